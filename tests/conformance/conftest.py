"""Fixtures of the conformance suite: every test runs once per adapter case."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from llm_gateway_server.providers.base import Provider
from llm_gateway_server.providers.registry import build_provider
from tests.conformance.cases import API_KEY, CASES, AdapterCase
from tests.fakes import FakeUpstream


@pytest.fixture(params=CASES, ids=[c.id for c in CASES])
def case(request: pytest.FixtureRequest) -> AdapterCase:
    """The adapter under test."""
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
async def fake(case: AdapterCase) -> AsyncIterator[FakeUpstream]:
    """The case's fake upstream, fresh per test."""
    async with case.fake() as server:
        yield server


@pytest.fixture
async def provider(case: AdapterCase, fake: FakeUpstream) -> AsyncIterator[Provider]:
    """The adapter, built the way the gateway builds it, pointed at the fake."""
    built = build_provider("conf", case.config(fake, headers={"X-Team": "conformance"}), API_KEY)
    yield built
    await built.aclose()
