"""Probe results: which listed models count, and when a target's model is missing."""

from __future__ import annotations

from llm_gateway_server.config.providers import ProviderConfig
from llm_gateway_server.core.types import ProbeResult
from llm_gateway_server.routing.probes import ProbeState, missing_model_hint, model_key


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
