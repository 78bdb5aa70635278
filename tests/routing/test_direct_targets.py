"""Direct ``provider/model`` targets live in a bounded LRU: breaker and statistics together."""

from __future__ import annotations

import contextlib

from llm_gateway_server.core.errors import NoTargetLeft, UpstreamFailure
from llm_gateway_server.core.types import ANONYMOUS
from llm_gateway_server.routing.breakers import BreakerState
from tests.routing.conftest import MakeRouter
from tests.routing.fakes import (
    FakeClock,
    FakeProvider,
    chat_request,
    context,
    fail,
    local,
    snapshot,
)


def _router(make_router: MakeRouter, provider: FakeProvider, max_direct: int):  # type: ignore[no-untyped-def]
    providers = {"box": local(breaker={"failure_threshold": 1, "reset_timeout_s": 60})}
    routes = {"chat": {"targets": [{"provider": "box", "model": "routed"}]}}
    server = {"allow_direct_targets": True, "max_direct_targets": max_direct}
    return make_router(snapshot(providers, routes, server=server), {"box": provider})


def _targets(router) -> dict[str, BreakerState]:  # type: ignore[no-untyped-def]
    return {t.model: t.breaker_state for t in router.health_view().targets}


async def test_direct_targets_are_bounded_least_recently_used_first_out(
    make_router: MakeRouter, clock: FakeClock
) -> None:
    box = FakeProvider("box")
    router = _router(make_router, box, max_direct=2)
    for name in ("m1", "m2", "m1", "m3"):  # m1 used again: m2 is the least recently used
        res = router.resolve(model=f"box/{name}", task=None, privacy=None, principal=ANONYMOUS)
        await router.chat(res, chat_request(), context(clock))
    assert set(_targets(router)) == {"routed", "m1", "m3"}
    # Naming a route's own target directly shares that target's state; it takes no slot.
    res = router.resolve(model="box/routed", task=None, privacy=None, principal=ANONYMOUS)
    await router.chat(res, chat_request(), context(clock))
    assert set(_targets(router)) == {"routed", "m1", "m3"}


async def test_an_evicted_direct_target_takes_its_breaker_with_it(
    make_router: MakeRouter, clock: FakeClock
) -> None:
    box = FakeProvider("box", [fail(UpstreamFailure.CONNECT)])
    router = _router(make_router, box, max_direct=1)

    async def call(name: str) -> None:
        res = router.resolve(model=f"box/{name}", task=None, privacy=None, principal=ANONYMOUS)
        with contextlib.suppress(NoTargetLeft):
            await router.chat(res, chat_request(), context(clock))

    await call("broken")
    assert _targets(router)["broken"] is BreakerState.OPEN
    await call("other")  # evicts "broken": breaker and statistics go together
    assert "broken" not in _targets(router)
    await call("broken")  # a fresh, closed breaker: the upstream is asked again
    assert _targets(router)["broken"] is BreakerState.CLOSED
    assert [c.model for c in box.calls] == ["broken", "other", "broken"]
