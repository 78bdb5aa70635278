"""Pytest fixtures for the fake upstreams (loaded by tests/conftest.py via ``pytest_plugins``).

Each fixture starts a fresh fake on 127.0.0.1, port 0, for one test and closes it after.
Script it through ``fake.behaviour`` / ``fake.script(...)``; inspect ``fake.requests``,
``fake.disconnects`` and ``fake.open_connections``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.gemini import FakeGemini
from tests.fakes.ollama import FakeOllama
from tests.fakes.openai import FakeOpenAI


@pytest.fixture
async def fake_openai() -> AsyncIterator[FakeOpenAI]:
    """A FakeOpenAI; ``fake_openai.base_url`` is the ``api_base`` (…/v1)."""
    async with FakeOpenAI() as fake:
        yield fake


@pytest.fixture
async def fake_anthropic() -> AsyncIterator[FakeAnthropic]:
    """A FakeAnthropic; ``fake_anthropic.base_url`` is the ``api_base``."""
    async with FakeAnthropic() as fake:
        yield fake


@pytest.fixture
async def fake_gemini() -> AsyncIterator[FakeGemini]:
    """A FakeGemini; ``fake_gemini.base_url`` is the ``api_base`` (…/v1beta)."""
    async with FakeGemini() as fake:
        yield fake


@pytest.fixture
async def fake_ollama() -> AsyncIterator[FakeOllama]:
    """A FakeOllama (native /api); ``fake_ollama.base_url`` is the ``api_base``."""
    async with FakeOllama() as fake:
        yield fake
