"""The shipped example config of seed 003 loads and routes as its table says."""

from __future__ import annotations

from pathlib import Path

import pytest

from llm_gateway_server.config.loader import load_config
from llm_gateway_server.core.errors import NotPermitted
from llm_gateway_server.core.types import ANONYMOUS, Locality, Principal, Privacy, Task
from tests.routing.conftest import MakeRouter
from tests.routing.fakes import FakeProvider

CONFIG = Path(__file__).parents[2] / "configs" / "seed-privacy-routing.yaml"

TABLE = {
    Task.CHAT: ("CognitiveComputations/dolphin-mistral-nemo:latest", "gemini-2.5-flash"),
    Task.VISION: ("qwen3-vl:8b", "gemini-2.5-pro"),
    Task.OCR: ("deepseek-ocr:3b", "gemini-2.5-flash"),
}


@pytest.mark.parametrize("task", list(TABLE))
def test_seed_table(make_router: MakeRouter, task: Task) -> None:
    snap = load_config(CONFIG, env={"GEMINI_API_KEY": "test-key"})
    router = make_router(snap, {"ollama": FakeProvider("ollama"), "gemini": FakeProvider("gemini")})
    local_model, cloud_model = TABLE[task]
    strict = router.resolve(model="", task=task, privacy=None, principal=ANONYMOUS)
    assert strict.privacy is Privacy.STRICT
    assert [(t.provider, t.model) for t in strict.targets] == [("ollama", local_model)]
    assert strict.skipped == (f"gemini/{cloud_model}",)
    flexible = router.resolve(model="", task=task, privacy=Privacy.FLEXIBLE, principal=ANONYMOUS)
    # FLEXIBLE: the stronger cloud model first, the local one as fallback.
    assert [(t.provider, t.model, t.locality) for t in flexible.targets] == [
        ("gemini", cloud_model, Locality.CLOUD),
        ("ollama", local_model, Locality.LOCAL),
    ]
    assert flexible.skipped == ()


def test_embeddings_stay_local_and_gemini_needs_its_key(make_router: MakeRouter) -> None:
    snap = load_config(CONFIG, env={})
    assert snap.disabled == {"gemini": "GEMINI_API_KEY is not set"}
    assert snap.config.providers["ollama"].api_base == "http://127.0.0.1:11434/v1"
    router = make_router(snap, {"ollama": FakeProvider("ollama")})
    emb = router.resolve(model="", task=Task.EMBEDDING, privacy=None, principal=ANONYMOUS)
    assert [t.model for t in emb.targets] == ["nomic-embed-text:latest"]
    # FLEXIBLE means "cloud allowed", not "cloud required": served by the local model.
    flexible = router.resolve(
        model="", task=Task.EMBEDDING, privacy=Privacy.FLEXIBLE, principal=ANONYMOUS
    )
    assert [t.model for t in flexible.targets] == ["nomic-embed-text:latest"]
    assert flexible.privacy is Privacy.STRICT
    # Without the key, FLEXIBLE chat still works, on the local target only.
    chat = router.resolve(model="", task=Task.CHAT, privacy=Privacy.FLEXIBLE, principal=ANONYMOUS)
    assert [t.provider for t in chat.targets] == ["ollama"]


def test_a_key_ceiling_still_refuses_flexible(make_router: MakeRouter) -> None:
    """A key's ``max_privacy`` is a hard policy, unlike a route's."""
    snap = load_config(CONFIG, env={"GEMINI_API_KEY": "test-key"})
    router = make_router(snap, {"ollama": FakeProvider("ollama"), "gemini": FakeProvider("gemini")})
    strict_key = Principal(tenant="t", max_privacy=Privacy.STRICT)
    with pytest.raises(NotPermitted) as info:
        router.resolve(model="chat", task=None, privacy=Privacy.FLEXIBLE, principal=strict_key)
    assert info.value.reason == "PRIVACY_NOT_PERMITTED"
    # Asking for nothing runs STRICT, on the local model only.
    res = router.resolve(model="chat", task=None, privacy=None, principal=strict_key)
    assert [t.provider for t in res.targets] == ["ollama"]
