"""Route resolution: names, defaults, direct targets, task, key permissions, privacy."""

from __future__ import annotations

import pytest

from llm_gateway_server.core.errors import (
    NoPermittedTarget,
    NotPermitted,
    RequestInvalid,
    RouteNotFound,
)
from llm_gateway_server.core.types import ANONYMOUS, Principal, Privacy, Task
from llm_gateway_server.routing.router import Router
from llm_gateway_server.routing.routes import Resolution
from tests.routing.conftest import MakeRouter
from tests.routing.fakes import FakeProvider, cloud, local, snapshot

PROVIDERS = {"ollama": local(), "ollama2": local(), "gemini": cloud()}
ROUTES = {
    "chat": {
        "task": "chat",
        "targets": [
            {"provider": "gemini", "model": "gemini-2.5-flash", "tier": 1},
            {"provider": "ollama", "model": "qwen3:8b", "tier": 0},
            {"provider": "ollama2", "model": "qwen3:8b", "tier": 0},
        ],
    },
    "cloud-only": {
        "task": "chat",
        "default": False,
        "targets": [{"provider": "gemini", "model": "gemini-2.5-pro"}],
    },
    "embedding": {"task": "embedding", "targets": [{"provider": "ollama", "model": "nomic"}]},
    "strict-route": {
        "task": "vision",
        "max_privacy": "strict",
        "default_privacy": "flexible",
        "targets": [{"provider": "ollama", "model": "qwen3-vl:8b"}],
    },
}


def fakes() -> dict[str, FakeProvider]:
    return {name: FakeProvider(name) for name in PROVIDERS}


def resolve(
    router: Router,
    model: str = "",
    task: Task | None = None,
    privacy: Privacy | None = None,
    principal: Principal = ANONYMOUS,
) -> Resolution:
    return router.resolve(model=model, task=task, privacy=privacy, principal=principal)


def test_route_by_name_orders_targets_by_tier(make_router: MakeRouter) -> None:
    router = make_router(snapshot(PROVIDERS, ROUTES), fakes())
    res = resolve(router, "chat", privacy=Privacy.FLEXIBLE)
    assert res.route == "chat"
    assert res.task is Task.CHAT
    assert [(t.provider, t.tier) for t in res.targets] == [
        ("ollama", 0),
        ("ollama2", 0),
        ("gemini", 1),
    ]


def test_default_route_per_task_and_chat_when_no_task(make_router: MakeRouter) -> None:
    router = make_router(snapshot(PROVIDERS, ROUTES), fakes())
    assert resolve(router).route == "chat"
    assert resolve(router, task=Task.EMBEDDING).route == "embedding"
    with pytest.raises(RouteNotFound, match="no default route for task ocr"):
        resolve(router, task=Task.OCR)


def test_unknown_route_and_direct_targets(make_router: MakeRouter) -> None:
    snap = snapshot(PROVIDERS, ROUTES)
    router = make_router(snap, fakes())
    with pytest.raises(RouteNotFound, match="direct provider/model targets are off"):
        resolve(router, "ollama/qwen3:8b")
    with pytest.raises(RouteNotFound, match="no route named 'nope'"):
        resolve(router, "nope")

    direct = make_router(
        snapshot(PROVIDERS, ROUTES, server={"allow_direct_targets": True}), fakes()
    )
    res = resolve(direct, "ollama/CognitiveComputations/dolphin-mistral-nemo:latest")
    assert res.direct
    assert [(t.provider, t.model) for t in res.targets] == [
        ("ollama", "CognitiveComputations/dolphin-mistral-nemo:latest")
    ]
    with pytest.raises(RouteNotFound, match="no provider named 'openai'"):
        resolve(direct, "openai/gpt-4o")
    # STRICT is the server default: a cloud direct target needs FLEXIBLE.
    with pytest.raises(NoPermittedTarget, match="STRICT"):
        resolve(direct, "gemini/gemini-2.5-flash")
    assert resolve(direct, "gemini/gemini-2.5-flash", privacy=Privacy.FLEXIBLE).targets
    limited = Principal(tenant="t", routes=frozenset({"chat"}))
    with pytest.raises(NotPermitted) as info:
        resolve(direct, "ollama/qwen3:8b", principal=limited)
    assert info.value.reason == "ROUTE_NOT_PERMITTED"


def test_task_mismatch(make_router: MakeRouter) -> None:
    router = make_router(snapshot(PROVIDERS, ROUTES), fakes())
    with pytest.raises(RequestInvalid) as info:
        resolve(router, "embedding", task=Task.CHAT)
    assert info.value.reason == "TASK_MISMATCH"
    assert info.value.field == "task"


def test_key_route_permission(make_router: MakeRouter) -> None:
    router = make_router(snapshot(PROVIDERS, ROUTES), fakes())
    principal = Principal(tenant="t", routes=frozenset({"embedding"}))
    with pytest.raises(NotPermitted) as info:
        resolve(router, "chat", principal=principal)
    assert info.value.reason == "ROUTE_NOT_PERMITTED"
    assert resolve(router, "embedding", principal=principal).route == "embedding"


def test_privacy_defaults_ceiling_and_clamping(make_router: MakeRouter) -> None:
    router = make_router(snapshot(PROVIDERS, ROUTES), fakes())
    # Server default is strict: only local targets.
    res = resolve(router, "chat")
    assert res.privacy is Privacy.STRICT
    assert {t.provider for t in res.targets} == {"ollama", "ollama2"}
    # The key's default wins over the server's.
    flexible_key = Principal(tenant="t", default_privacy=Privacy.FLEXIBLE)
    assert resolve(router, "chat", principal=flexible_key).privacy is Privacy.FLEXIBLE
    # The route's default (flexible) is clamped by its own ceiling (strict).
    assert resolve(router, "strict-route").privacy is Privacy.STRICT
    # FLEXIBLE asks for no more than "cloud allowed": a strict route serves it locally.
    res = resolve(router, "strict-route", privacy=Privacy.FLEXIBLE)
    assert res.privacy is Privacy.STRICT
    assert [t.provider for t in res.targets] == ["ollama"]
    # A key ceiling clamps a flexible default and refuses an explicit flexible request.
    strict_key = Principal(tenant="t", max_privacy=Privacy.STRICT, default_privacy=Privacy.FLEXIBLE)
    assert resolve(router, "chat", principal=strict_key).privacy is Privacy.STRICT
    with pytest.raises(NotPermitted) as info:
        resolve(router, "chat", privacy=Privacy.FLEXIBLE, principal=strict_key)
    assert info.value.reason == "PRIVACY_NOT_PERMITTED"


def test_strict_without_local_target_says_why(make_router: MakeRouter) -> None:
    router = make_router(snapshot(PROVIDERS, ROUTES), fakes())
    with pytest.raises(NoPermittedTarget, match=r"no local target.*gemini/gemini-2.5-pro"):
        resolve(router, "cloud-only", privacy=Privacy.STRICT)


def test_all_permitted_providers_disabled_says_which_and_why(make_router: MakeRouter) -> None:
    providers = dict(PROVIDERS)
    providers["gemini"] = {"kind": "gemini", "api_key_env": "GEMINI_API_KEY", "locality": "cloud"}
    snap = snapshot(providers, ROUTES, env={})
    provs = fakes()
    del provs["gemini"]
    router = make_router(snap, provs)
    with pytest.raises(
        NoPermittedTarget, match=r"gemini/gemini-2\.5-pro: GEMINI_API_KEY is not set"
    ):
        resolve(router, "cloud-only", privacy=Privacy.FLEXIBLE)
    # A disabled target is left out, the others stay.
    res = resolve(router, "chat", privacy=Privacy.FLEXIBLE)
    assert [t.provider for t in res.targets] == ["ollama", "ollama2"]
    # A provider without an adapter is unusable too.
    del provs["ollama"]
    router2 = make_router(snap, provs)
    with pytest.raises(NoPermittedTarget, match="ollama/nomic: no adapter"):
        resolve(router2, "embedding")


def test_routes_view(make_router: MakeRouter) -> None:
    router = make_router(snapshot(PROVIDERS, ROUTES), fakes())
    views = {v.name: v for v in router.routes_view(ANONYMOUS, None)}
    assert set(views) == set(ROUTES)
    chat = views["chat"]
    assert chat.default_for_task
    assert chat.default_privacy is Privacy.STRICT
    assert chat.max_privacy is Privacy.FLEXIBLE
    assert [t.provider for t in chat.targets] == ["ollama", "ollama2", "gemini"]
    assert all(t.available for t in chat.targets)
    assert not views["cloud-only"].default_for_task
    strict_key = Principal(tenant="t", max_privacy=Privacy.STRICT, routes=frozenset({"cloud-only"}))
    only = router.routes_view(strict_key, Task.CHAT)
    assert [v.name for v in only] == ["cloud-only"]
    # Nothing on it is usable for a STRICT-only key.
    assert not only[0].available
    assert [v.name for v in router.routes_view(ANONYMOUS, Task.EMBEDDING)] == ["embedding"]
