"""Costs: config prices, free local models, LiteLLM's bundled map, unknown models."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime

import pytest

from llm_gateway_server.config.providers import ModelPrice, ProviderConfig, ProviderKind
from llm_gateway_server.core.types import Locality, Usage
from llm_gateway_server.state import cost_usd
from llm_gateway_server.state.periods import expire_at, period_end, period_id

CLOUD = ProviderConfig(kind=ProviderKind.OPENAI, locality=Locality.CLOUD)
LOCAL = ProviderConfig(
    kind=ProviderKind.OPENAI_COMPATIBLE, api_base="http://127.0.0.1:1/v1", locality=Locality.LOCAL
)


def test_config_prices_come_first() -> None:
    priced = CLOUD.model_copy(
        update={"prices": {"gpt-4o-mini": ModelPrice(input_per_mtok=1, output_per_mtok=2)}}
    )
    cost = cost_usd(priced, "chat", "gpt-4o-mini", Usage(1_000_000, 500_000))
    assert cost == pytest.approx(2.0)


def test_local_models_are_free_unless_priced() -> None:
    assert cost_usd(LOCAL, "chat", "qwen3:8b", Usage(1000, 1000)) == 0.0
    priced = LOCAL.model_copy(update={"prices": {"big": ModelPrice(output_per_mtok=1)}})
    assert cost_usd(priced, "chat", "big", Usage(0, 1_000_000)) == pytest.approx(1.0)


def test_cloud_models_are_priced_from_litellms_bundled_map() -> None:
    # gpt-4o-mini: 0.15 USD in, 0.60 USD out per million tokens in the bundled map.
    cost = cost_usd(CLOUD, "chat", "gpt-4o-mini", Usage(1_000_000, 1_000_000))
    assert cost == pytest.approx(0.75)
    gemini = ProviderConfig(kind=ProviderKind.GEMINI, api_key_env="K")
    assert (cost_usd(gemini, "chat", "gemini-2.5-flash", Usage(1000, 1000)) or 0) > 0


def test_embeddings_cost_input_only() -> None:
    cost = cost_usd(CLOUD, "embedding", "text-embedding-3-small", Usage(1_000_000, 999))
    assert cost == pytest.approx(0.02)


def test_unknown_cloud_models_have_no_price() -> None:
    assert cost_usd(CLOUD, "chat", "no-such-model-anywhere", Usage(10, 10)) is None


def test_pricing_does_not_import_litellm() -> None:
    # LiteLLM takes seconds to import; the map is read from its package data instead.
    code = (
        "import sys\n"
        "from llm_gateway_server.state.pricing import cost_usd\n"
        "from llm_gateway_server.config.providers import ProviderConfig\n"
        "from llm_gateway_server.core.types import Usage\n"
        "p = ProviderConfig(kind='openai', locality='cloud')\n"
        "assert cost_usd(p, 'chat', 'gpt-4o-mini', Usage(1, 1))\n"
        "print('litellm' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "False"


def test_period_ids_and_ends() -> None:
    now = datetime(2025, 12, 31, 15, 30, tzinfo=UTC)  # a Wednesday
    assert period_id("day", now) == "d2025-12-31"
    assert period_id("week", now) == "w2026-01"
    assert period_id("month", now) == "m2025-12"
    assert period_id("total", now) == "total"
    assert period_end("day", now) == datetime(2026, 1, 1, tzinfo=UTC)
    assert period_end("week", now) == datetime(2026, 1, 5, tzinfo=UTC)
    assert period_end("month", now) == datetime(2026, 1, 1, tzinfo=UTC)
    assert period_end("total", now) is None
    assert expire_at("total", now) == 0
    assert expire_at("day", now) > now.timestamp()
