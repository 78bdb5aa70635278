"""Privacy levels: per-privacy target lists, local-only routes, errors naming what was skipped."""

from __future__ import annotations

import pytest

from llm_gateway_server.config.loader import ConfigError
from llm_gateway_server.core.errors import (
    NoPermittedTarget,
    NoTargetLeft,
    RequestInvalid,
    RouteNotFound,
    UpstreamFailure,
)
from llm_gateway_server.core.types import ANONYMOUS, Privacy
from tests.routing.conftest import MakeRouter
from tests.routing.fakes import (
    FakeClock,
    FakeProvider,
    chat_request,
    cloud,
    context,
    fail,
    local,
    snapshot,
)

PROVIDERS = {"ollama": local(), "gemini": cloud()}
ROUTES = {
    "chat": {
        "targets": [{"provider": "ollama", "model": "llama3"}],
        "flexible": [
            {"provider": "gemini", "model": "gemini-2.5-flash"},
            {"provider": "ollama", "model": "llama3"},
        ],
    },
    "mixed": {
        "default": False,
        "targets": [
            {"provider": "ollama", "model": "llama3"},
            {"provider": "gemini", "model": "gemini-2.5-pro"},
        ],
    },
}


def fakes() -> dict[str, FakeProvider]:
    return {name: FakeProvider(name) for name in PROVIDERS}


def test_flexible_list_orders_flexible_requests(make_router: MakeRouter) -> None:
    router = make_router(snapshot(PROVIDERS, ROUTES), fakes())
    flexible = router.resolve(
        model="chat", task=None, privacy=Privacy.FLEXIBLE, principal=ANONYMOUS
    )
    assert [(t.label, t.tier) for t in flexible.targets] == [
        ("gemini/gemini-2.5-flash", 0),
        ("ollama/llama3", 1),
    ]
    strict = router.resolve(model="chat", task=None, privacy=Privacy.STRICT, principal=ANONYMOUS)
    assert [t.label for t in strict.targets] == ["ollama/llama3"]
    assert strict.skipped == ("gemini/gemini-2.5-flash",)
    # One live state per provider/model, whichever list the target came from.
    assert flexible.targets[1].state is strict.targets[0].state


def test_without_flexible_list_both_levels_share_targets(make_router: MakeRouter) -> None:
    router = make_router(snapshot(PROVIDERS, ROUTES), fakes())
    flexible = router.resolve(
        model="mixed", task=None, privacy=Privacy.FLEXIBLE, principal=ANONYMOUS
    )
    assert [t.label for t in flexible.targets] == ["ollama/llama3", "gemini/gemini-2.5-pro"]


def test_routes_view_and_health_list_every_target(make_router: MakeRouter) -> None:
    router = make_router(snapshot(PROVIDERS, ROUTES), fakes())
    view = next(v for v in router.routes_view(ANONYMOUS, None) if v.name == "chat")
    assert {(t.provider, t.model) for t in view.targets} == {
        ("ollama", "llama3"),
        ("gemini", "gemini-2.5-flash"),
    }
    health = next(r for r in router.health_view().routes if r.name == "chat")
    assert health.total_targets == 2


async def test_strict_error_names_the_cloud_targets_skipped(
    make_router: MakeRouter, clock: FakeClock
) -> None:
    ollama = FakeProvider("ollama", default=fail(UpstreamFailure.SERVER_ERROR))
    gemini = FakeProvider("gemini")
    router = make_router(snapshot(PROVIDERS, ROUTES), {"ollama": ollama, "gemini": gemini})
    res = router.resolve(model="chat", task=None, privacy=Privacy.STRICT, principal=ANONYMOUS)
    with pytest.raises(NoTargetLeft) as info:
        await router.chat(res, chat_request(), context(clock))
    message = info.value.message
    assert "ollama/llama3: upstream_error" in message
    assert "skipped for STRICT privacy: gemini/gemini-2.5-flash" in message
    assert gemini.calls == []


def test_strict_on_cloud_only_route_names_skipped(make_router: MakeRouter) -> None:
    routes = {"cloud": {"targets": [{"provider": "gemini", "model": "g"}]}}
    router = make_router(snapshot(PROVIDERS, routes), fakes())
    with pytest.raises(NoPermittedTarget, match="skipped for STRICT privacy: gemini/g"):
        router.resolve(model="cloud", task=None, privacy=Privacy.STRICT, principal=ANONYMOUS)


def test_flexible_list_must_name_known_providers() -> None:
    routes = {
        "chat": {
            "targets": [{"provider": "ollama", "model": "m"}],
            "flexible": [{"provider": "nope", "model": "m"}],
        }
    }
    with pytest.raises(ConfigError, match=r"routes\.chat\.flexible\[0\]\.provider"):
        snapshot(PROVIDERS, routes, env={})


def test_long_model_names_are_cut_in_errors(make_router: MakeRouter) -> None:
    router = make_router(snapshot(PROVIDERS, ROUTES), fakes())
    name = "x" * 6000
    with pytest.raises(RouteNotFound) as info:
        router.resolve(model=name, task=None, privacy=None, principal=ANONYMOUS)
    assert len(info.value.message) < 400
    assert "6000 characters" in info.value.message
    assert all(len(v) < 300 for v in info.value.metadata.values())
    direct = make_router(
        snapshot(PROVIDERS, ROUTES, server={"allow_direct_targets": True}), fakes()
    )
    with pytest.raises(RouteNotFound) as info:
        direct.resolve(model=f"{name}/m", task=None, privacy=None, principal=ANONYMOUS)
    assert len(info.value.message) < 500
    with pytest.raises(RequestInvalid) as invalid:
        direct.resolve(model=f"ollama/{name}", task=None, privacy=None, principal=ANONYMOUS)
    assert invalid.value.metadata == {"field": "model"}
    assert len(invalid.value.message) < 200
