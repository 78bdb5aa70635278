"""Probe results: which listed models count, and when a target's model is missing."""

from __future__ import annotations

from llm_gateway_server.config.providers import ProviderConfig
from llm_gateway_server.core.types import ANONYMOUS, ProbeResult
from llm_gateway_server.routing.probes import ProbeState, missing_model_hint, model_key
from tests.routing.conftest import MakeRouter
from tests.routing.fakes import FakeClock, FakeProvider, chat_request, context, local, snapshot
from tests.routing.test_probes_swap import until


def test_model_key_matches_ollama_names() -> None:
    assert model_key("nomic-embed-text") == model_key("nomic-embed-text:latest")
    assert model_key("CognitiveComputations/dolphin-mistral-nemo") == model_key(
        "cognitivecomputations/dolphin-mistral-nemo:latest"
    )
    assert model_key("qwen3:8b") != model_key("qwen3:30b")
    assert model_key("hf.co/org/model:Q4_K_M") == "hf.co/org/model:q4_k_m"


def test_missing_only_when_the_probe_listed_models() -> None:
    state = ProbeState()
    assert not state.missing("qwen3:8b")  # never probed
    state.record(ProbeResult(True, 0.01, models=("llama3.2:latest",)))
    assert state.missing("qwen3:8b") and not state.missing("llama3.2")
    # llama.cpp answers under any name: its one listed model proves nothing.
    state.record(ProbeResult(True, 0.01, models=("tiny",), any_model=True))
    assert not state.missing("qwen3:8b")
    # A server that lists nothing, or a failed probe: unknown, not missing.
    state.record(ProbeResult(True, 0.01, models=()))
    assert not state.missing("qwen3:8b")
    state.record(ProbeResult(False, 0.01, error="down"))
    assert state.failed and not state.missing("qwen3:8b")


def test_not_probed_is_neither_ok_nor_failed() -> None:
    state = ProbeState()
    state.record(ProbeResult(True, 0.0, error="not probed: no free health call", probed=False))
    assert state.ok is None and not state.failed and state.at is None


def test_hints() -> None:
    ollama = ProviderConfig(kind="openai_compatible", api_base="http://gpu:11434/v1")
    vllm = ProviderConfig(kind="openai_compatible", api_base="http://gpu:8000/v1")
    assert missing_model_hint("gpu", "qwen3:8b", ollama).endswith("run `ollama pull qwen3:8b`")
    assert "load or serve it" in missing_model_hint("gpu", "Qwen/Qwen3-8B", vllm)
    assert len(missing_model_hint("gpu", "x" * 6000, vllm)) < 300


class ListingProvider(FakeProvider):
    """A fake whose probe lists ``models``."""

    def __init__(self, name: str, models: tuple[str, ...]) -> None:
        super().__init__(name)
        self.models = models

    async def probe(self, *, timeout_s: float) -> ProbeResult:
        self.probes += 1
        return ProbeResult(ok=True, latency_s=0.001, models=self.models)


async def test_a_missing_model_is_demoted_and_unusable(
    make_router: MakeRouter, clock: FakeClock
) -> None:
    probed = {"enabled": True, "interval_s": 0.02, "timeout_s": 0.2}
    providers = {"gpu-a": local(probe=probed), "gpu-b": local(probe=probed)}
    targets = [
        {"provider": "gpu-a", "model": "qwen3:8b"},
        {"provider": "gpu-b", "model": "qwen3:8b"},
    ]
    routes = {"chat": {"targets": targets}}
    gpu_a = ListingProvider("gpu-a", ("llama3.2:latest",))
    gpu_b = ListingProvider("gpu-b", ("qwen3:8b",))
    router = make_router(snapshot(providers, routes), {"gpu-a": gpu_a, "gpu-b": gpu_b})
    await router.start()
    await until(lambda: gpu_a.probes >= 1 and gpu_b.probes >= 1)
    view = {t.provider: t for t in router.routes_view(ANONYMOUS, None)[0].targets}
    assert not view["gpu-a"].available and view["gpu-b"].available
    assert "ollama pull" not in view["gpu-a"].unavailable_reason  # not an Ollama by name
    assert router.ready
    res = router.resolve(model="chat", task=None, privacy=None, principal=ANONYMOUS)
    assert (await router.chat(res, chat_request(), context(clock))).provider == "gpu-b"
    assert gpu_a.upstream_calls() == 0
