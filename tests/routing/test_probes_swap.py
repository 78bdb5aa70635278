"""Active probes feed routing, Health and readiness; hot swap keeps live state."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from llm_gateway_server.core.errors import UpstreamFailure
from llm_gateway_server.core.types import ANONYMOUS, ProbeResult
from llm_gateway_server.routing.breakers import BreakerState
from tests.routing.conftest import MakeRouter
from tests.routing.fakes import (
    FakeClock,
    FakeProvider,
    Readiness,
    chat_request,
    context,
    fail,
    local,
    snapshot,
)

PROBED = {"enabled": True, "interval_s": 0.02, "timeout_s": 0.2}


async def until(condition: Callable[[], bool], timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)


async def test_failed_probe_demotes_and_readiness_follows(
    make_router: MakeRouter, clock: FakeClock
) -> None:
    providers = {"sick": local(probe=PROBED), "well": local(probe=PROBED), "cloud": local()}
    routes = {
        "chat": {
            "targets": [{"provider": "sick", "model": "m"}, {"provider": "well", "model": "m"}]
        },
        "alone": {"default": False, "targets": [{"provider": "sick", "model": "x"}]},
    }
    sick, well = FakeProvider("sick", probe_ok=False), FakeProvider("well")
    cloud = FakeProvider("cloud")
    readiness = Readiness()
    router = make_router(
        snapshot(providers, routes),
        {"sick": sick, "well": well, "cloud": cloud},
        on_readiness=readiness,
    )
    await router.start()
    await until(lambda: sick.probes >= 2 and well.probes >= 2)
    assert cloud.probes == 0  # probing is off for it

    providers_health = {p.name: p for p in router.health_view().providers}
    assert providers_health["sick"].probe_ok is False
    assert providers_health["sick"].probe_error == "down"
    assert providers_health["sick"].last_probe_time is not None
    assert providers_health["well"].probe_ok is True
    assert providers_health["cloud"].probe_ok is None

    # The sick provider is tried last while the other target is usable.
    res = router.resolve(model="chat", task=None, privacy=None, principal=ANONYMOUS)
    for _ in range(5):
        assert (await router.chat(res, chat_request(), context(clock))).provider == "well"
    assert sick.upstream_calls() == 0
    # ... but still as a last resort.
    alone = router.resolve(model="alone", task=None, privacy=None, principal=ANONYMOUS)
    assert (await router.chat(alone, chat_request(), context(clock))).provider == "sick"

    routes_health = {r.name: r for r in router.health_view().routes}
    assert routes_health["alone"].usable_targets == 0
    assert routes_health["chat"].usable_targets == 1
    assert router.ready

    well.probe_ok = False
    await until(lambda: not router.ready)
    assert readiness.values[-1] is False
    sick.probe_ok = True
    await until(lambda: router.ready)
    assert readiness.values[-1] is True
    await router.aclose()
    probes = sick.probes
    await asyncio.sleep(0.05)
    assert sick.probes == probes  # no probe task left running


async def test_hanging_or_raising_probe_is_bounded(make_router: MakeRouter) -> None:
    class Hanging(FakeProvider):
        async def probe(self, *, timeout_s: float) -> ProbeResult:
            self.probes += 1
            await asyncio.sleep(3600)
            raise AssertionError("unreachable")

    class Raising(FakeProvider):
        async def probe(self, *, timeout_s: float) -> ProbeResult:
            self.probes += 1
            raise RuntimeError("boom http://user:secret@host")

    probe = {"enabled": True, "interval_s": 0.02, "timeout_s": 0.02}
    providers = {"h": local(probe=probe), "r": local(probe=probe)}
    routes = {
        "chat": {"targets": [{"provider": "h", "model": "m"}, {"provider": "r", "model": "m"}]}
    }
    router = make_router(snapshot(providers, routes), {"h": Hanging("h"), "r": Raising("r")})
    await router.start()
    await until(lambda: all(p.probe_ok is False for p in router.health_view().providers))
    errors = {p.name: p.probe_error for p in router.health_view().providers}
    assert errors == {"h": "probe timed out", "r": "probe raised RuntimeError"}


async def test_swap_keeps_unchanged_breakers_and_in_flight_calls(
    make_router: MakeRouter, clock: FakeClock
) -> None:
    breaker = {"failure_threshold": 1, "reset_timeout_s": 60}
    providers = {"a": local(breaker=breaker), "b": local(breaker=breaker)}
    routes = {
        "chat": {"targets": [{"provider": "a", "model": "m"}, {"provider": "b", "model": "m"}]}
    }
    a = FakeProvider("a", default=fail(UpstreamFailure.CONNECT))
    b = FakeProvider("b")
    readiness = Readiness()
    router = make_router(snapshot(providers, routes), {"a": a, "b": b}, on_readiness=readiness)
    await router.start()
    res = router.resolve(model="chat", task=None, privacy=None, principal=ANONYMOUS)
    await router.chat(res, chat_request(), context(clock))
    b.gate = asyncio.Event()
    in_flight = asyncio.create_task(router.chat(res, chat_request(), context(clock)))
    while b.entered < 2:
        await asyncio.sleep(0)

    # Reload: b's upstream moves (new breaker), a is unchanged (keeps its open breaker),
    # a route is added and the old route's targets are reordered.
    providers2 = {"a": local(breaker=breaker), "b": local(breaker=breaker, api_base="http://h2/v1")}
    routes2 = {
        "chat": {"targets": [{"provider": "b", "model": "m"}, {"provider": "a", "model": "m"}]},
        "new": {"default": False, "targets": [{"provider": "a", "model": "m"}]},
    }
    b2 = FakeProvider("b")
    router.swap(snapshot(providers2, routes2, generation=2), {"a": a, "b": b2})
    view = router.health_view()
    assert view.config_generation == 2
    states = {t.provider: t for t in view.targets}
    assert states["a"].breaker_state is BreakerState.OPEN
    assert states["b"].breaker_state is BreakerState.CLOSED
    assert [r.name for r in view.routes] == ["chat", "new"]

    # The call in flight finishes on the table (and adapter) it started with.
    b.gate.set()
    assert (await in_flight).provider == "b"
    assert b2.upstream_calls() == 0
    res2 = router.resolve(model="chat", task=None, privacy=None, principal=ANONYMOUS)
    result = await router.chat(res2, chat_request(), context(clock))
    assert result.provider == "b"
    assert b2.upstream_calls() == 1
    assert a.upstream_calls() == 1  # still open after the reload: never touched again
