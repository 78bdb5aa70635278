"""Model health through a real server: one definition of usable, missing models, disabled
and unprobed providers, as Health, ListModels and readiness report them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from llmgateway.v1 import models_pb2
from tests.fakes import Behaviour, FakeGemini, FakeOllama, FakeOpenAI, Fault
from tests.service.conftest import Running, Start
from tests.service.test_cli import _run_cli
from tests.service.test_seed_privacy import seed_config

PROBED = "probe: {enabled: true, interval_s: 0.05, timeout_s: 1}"


def _config(base_url: str, *, model: str = "qwen3:8b", name: str = "ollama") -> str:
    return f"""
server: {{listen: '127.0.0.1:0', drain_delay_s: 0}}
providers:
  {name}: {{kind: openai_compatible, api_base: '{base_url}', locality: local,
            retry: {{max_attempts: 1}}, {PROBED}}}
routes:
  chat: {{task: chat, targets: [{{provider: {name}, model: '{model}'}}]}}
telemetry: {{metrics_listen: ''}}
"""


async def _until(
    gw: Running, check: Callable[[models_pb2.HealthResponse, models_pb2.ListModelsResponse], bool]
) -> tuple[models_pb2.HealthResponse, models_pb2.ListModelsResponse]:
    """Health and ListModels once ``check`` holds (probes run in the background)."""
    for _ in range(200):
        health = await gw.stub.Health(models_pb2.HealthRequest(), timeout=5)
        models = await gw.stub.ListModels(models_pb2.ListModelsRequest(), timeout=5)
        if check(health, models):
            return health, models
        await asyncio.sleep(0.02)
    raise AssertionError(f"never reached: {health} {models}")


async def test_list_models_agrees_with_health_when_probes_fail(
    start_gateway: Start, upstream: FakeOpenAI
) -> None:
    upstream.models = ("qwen3:8b",)
    gw = await start_gateway(_config(upstream.base_url))
    health, models = await _until(gw, lambda h, m: h.ready and m.routes[0].available)
    assert models.routes[0].targets[0].unavailable_reason == ""
    upstream.behaviour = Behaviour(fault=Fault.HTTP_ERROR, status=503)
    health, models = await _until(gw, lambda h, m: not h.ready)
    route = models.routes[0]
    assert not route.available and not route.targets[0].available
    assert route.targets[0].unavailable_reason.startswith("probe failed")
    assert not health.targets[0].available
    assert health.targets[0].unavailable_reason == route.targets[0].unavailable_reason
    assert not health.routes[0].available


async def test_never_pulled_model_says_what_to_run(
    start_gateway: Start, upstream: FakeOpenAI
) -> None:
    upstream.models = ("llama3.2:latest",)
    gw = await start_gateway(_config(upstream.base_url, model="qwen3:8b"))
    health, models = await _until(gw, lambda h, m: h.providers[0].HasField("probe_ok"))
    assert health.providers[0].probe_ok  # the server is up; the model is not there
    hint = "model 'qwen3:8b' is not pulled on 'ollama': run `ollama pull qwen3:8b`"
    assert health.targets[0].unavailable_reason == hint
    assert models.routes[0].targets[0].unavailable_reason == hint
    assert not health.ready and not models.routes[0].available
    # `llm-gateway models` shows the same verdict and hint.
    code, out, err = await _run_cli("models", "--target", gw.address)
    assert code == 0, err
    assert f"ollama/qwen3:8b  local  down ({hint})" in out
    assert "(unavailable)" in out
    # Pulled meanwhile: usable at the next probe.
    upstream.models = ("llama3.2:latest", "qwen3:8b")
    await _until(gw, lambda h, m: h.ready and m.routes[0].available)


async def test_ollama_tags_are_checked_with_implicit_latest(
    start_gateway: Start, fake_ollama: FakeOllama
) -> None:
    fake_ollama.models = ("llama3.2:latest",)
    config = _config(fake_ollama.base_url, model="nomic-embed-text", name="local").replace(
        "kind: openai_compatible", "kind: ollama"
    )
    gw = await start_gateway(config)
    health, _ = await _until(gw, lambda h, m: not h.ready)
    # The provider is of kind ollama, so the hint is Ollama's whatever its name.
    assert "run `ollama pull nomic-embed-text`" in health.targets[0].unavailable_reason
    assert any(r.path == "/api/tags" for r in fake_ollama.requests)
    fake_ollama.models = ("llama3.2:latest", "nomic-embed-text:latest")
    await _until(gw, lambda h, m: h.ready and m.routes[0].available)


@pytest.fixture
async def gemini() -> FakeGemini:
    async with FakeGemini() as fake:
        yield fake  # type: ignore[misc]


async def test_disabled_and_unprobed_providers(
    start_gateway: Start, upstream: FakeOpenAI, gemini: FakeGemini
) -> None:
    text = seed_config(upstream, gemini).replace("SECRET_KEY", "UNSET_GEMINI_KEY")
    gw = await start_gateway(text)
    health = await gw.stub.Health(models_pb2.HealthRequest(), timeout=5)
    targets = {(t.provider, t.model): t for t in health.targets}
    flash = targets[("gemini", "gemini-2.5-flash")]
    assert flash.disabled and not flash.available
    assert flash.breaker_state == models_pb2.BREAKER_STATE_UNSPECIFIED
    assert flash.success_rate == 0
    assert flash.unavailable_reason == "provider disabled: UNSET_GEMINI_KEY is not set"
    local = targets[("ollama", "CognitiveComputations/dolphin-mistral-nemo:latest")]
    assert not local.disabled and local.breaker_state == models_pb2.BREAKER_STATE_CLOSED


async def test_a_cloud_provider_is_not_probed_even_when_asked(
    start_gateway: Start, upstream: FakeOpenAI, gemini: FakeGemini
) -> None:
    text = seed_config(upstream, gemini).replace(
        "kind: gemini", "kind: gemini\n    probe: {enabled: true, interval_s: 0.05}"
    )
    gw = await start_gateway(text)
    health, _ = await _until(
        gw, lambda h, m: any(p.probe_error for p in h.providers if p.name == "gemini")
    )
    provider = next(p for p in health.providers if p.name == "gemini")
    assert not provider.HasField("probe_ok")
    assert provider.probe_error.startswith("not probed")
    assert gemini.requests == []
