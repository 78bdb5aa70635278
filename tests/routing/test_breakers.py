"""Circuit breakers: open after N failures, skip without touching, one half-open probe."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from llm_gateway_server.core.errors import NoTargetLeft, UpstreamError, UpstreamFailure
from llm_gateway_server.core.types import ANONYMOUS, AttemptOutcome
from llm_gateway_server.routing.breakers import BreakerState
from tests.routing.conftest import MakeRouter
from tests.routing.fakes import (
    FakeClock,
    FakeProvider,
    Readiness,
    RecordingObserver,
    chat_request,
    context,
    fail,
    local,
    snapshot,
)

BREAKER = {"failure_threshold": 3, "reset_timeout_s": 10.0}


def two_targets(**cfg: object) -> tuple[dict, dict]:  # type: ignore[type-arg]
    providers = {"a": local(breaker=BREAKER, **cfg), "b": local(breaker=BREAKER, **cfg)}
    routes = {
        "chat": {"targets": [{"provider": "a", "model": "m"}, {"provider": "b", "model": "m"}]}
    }
    return providers, routes


def target(router, provider: str):  # type: ignore[no-untyped-def]
    return next(t for t in router.health_view().targets if t.provider == provider)


async def test_breaker_opens_skips_then_one_probe_closes_it(
    make_router: MakeRouter, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    providers, routes = two_targets()
    a = FakeProvider("a", default=fail(UpstreamFailure.SERVER_ERROR))
    b = FakeProvider("b")
    observer = RecordingObserver()
    router = make_router(snapshot(providers, routes), {"a": a, "b": b}, observer=observer)
    res = router.resolve(model="chat", task=None, privacy=None, principal=ANONYMOUS)
    caplog.set_level(logging.INFO, logger="llm_gateway_server.routing.breakers")

    for _ in range(3):
        result = await router.chat(res, chat_request(), context(clock))
        assert result.provider == "b"
    assert a.upstream_calls() == 3
    assert observer.transitions == [("a", "m", "closed", "open")]
    assert "circuit breaker a/m: closed -> open" in caplog.text
    health = target(router, "a")
    assert health.breaker_state is BreakerState.OPEN
    assert health.consecutive_failures == 3
    assert not health.available
    assert "server_error" in health.last_error
    assert health.last_error_time is not None
    assert health.success_rate == 0.0
    assert health.window_calls == 3

    # Open: skipped without touching the upstream.
    result = await router.chat(res, chat_request(), context(clock))
    assert a.upstream_calls() == 3
    assert [x.outcome for x in result.attempts] == [
        AttemptOutcome.CIRCUIT_OPEN,
        AttemptOutcome.SUCCESS,
    ]
    assert observer.attempts[-2][1] is AttemptOutcome.CIRCUIT_OPEN
    assert observer.attempts[-2][0].breaker_state == "open"

    # After the reset timeout exactly one probe goes through, and its success closes it.
    clock.advance(10.0)
    assert target(router, "a").available
    a.default = "ok"
    result = await router.chat(res, chat_request(), context(clock))
    assert result.provider == "a"
    assert a.upstream_calls() == 4
    assert observer.attempts[-1][0].breaker_state == "half_open"
    assert observer.transitions[1:] == [
        ("a", "m", "open", "half_open"),
        ("a", "m", "half_open", "closed"),
    ]
    health = target(router, "a")
    assert health.breaker_state is BreakerState.CLOSED
    assert health.consecutive_failures == 0
    assert health.available


async def test_failed_probe_reopens_for_another_timeout(
    make_router: MakeRouter, clock: FakeClock
) -> None:
    providers, routes = two_targets()
    a = FakeProvider("a", default=fail(UpstreamFailure.CONNECT))
    router = make_router(snapshot(providers, routes), {"a": a, "b": FakeProvider("b")})
    res = router.resolve(model="chat", task=None, privacy=None, principal=ANONYMOUS)
    for _ in range(3):
        await router.chat(res, chat_request(), context(clock))
    clock.advance(10.0)
    await router.chat(res, chat_request(), context(clock))  # the probe, fails
    assert a.upstream_calls() == 4
    assert target(router, "a").breaker_state is BreakerState.OPEN
    clock.advance(9.0)
    await router.chat(res, chat_request(), context(clock))
    assert a.upstream_calls() == 4
    clock.advance(1.0)
    await router.chat(res, chat_request(), context(clock))
    assert a.upstream_calls() == 5


async def test_half_open_lets_exactly_one_concurrent_call_through(
    make_router: MakeRouter, clock: FakeClock
) -> None:
    providers, routes = two_targets()
    a = FakeProvider("a", [fail(UpstreamFailure.CONNECT)] * 3)
    b = FakeProvider("b")
    router = make_router(snapshot(providers, routes), {"a": a, "b": b})
    res = router.resolve(model="chat", task=None, privacy=None, principal=ANONYMOUS)
    for _ in range(3):
        await router.chat(res, chat_request(), context(clock))
    clock.advance(10.0)
    a.gate = asyncio.Event()  # the probe stays in flight until released
    calls = [
        asyncio.create_task(router.chat(res, chat_request(), context(clock))) for _ in range(5)
    ]
    while a.entered < 4 or b.upstream_calls() < 3 + 4:
        await asyncio.sleep(0)
    await asyncio.sleep(0.01)
    assert a.upstream_calls() == 4  # 3 failures + ONE probe
    assert target(router, "a").breaker_state is BreakerState.HALF_OPEN
    a.gate.set()
    results = await asyncio.gather(*calls)
    assert sorted(r.provider for r in results) == ["a", "b", "b", "b", "b"]
    skipped = [r.attempts[0].outcome for r in results if r.provider == "b"]
    assert skipped == [AttemptOutcome.CIRCUIT_OPEN] * 4
    assert target(router, "a").breaker_state is BreakerState.CLOSED


async def test_caller_caused_and_cancelled_calls_never_count(
    make_router: MakeRouter, clock: FakeClock
) -> None:
    providers, routes = two_targets()
    a = FakeProvider("a", default=fail(UpstreamFailure.CONTEXT_LENGTH))
    router = make_router(snapshot(providers, routes), {"a": a, "b": FakeProvider("b")})
    res = router.resolve(model="chat", task=None, privacy=None, principal=ANONYMOUS)
    for _ in range(10):
        with pytest.raises(UpstreamError, match=r"injected context_length"):
            await router.chat(res, chat_request(), context(clock))
    assert target(router, "a").breaker_state is BreakerState.CLOSED
    assert target(router, "a").consecutive_failures == 0


async def test_all_open_gives_soonest_reset_as_retry_hint(
    make_router: MakeRouter, clock: FakeClock
) -> None:
    providers, routes = two_targets()
    a = FakeProvider("a", default=fail(UpstreamFailure.CONNECT))
    b = FakeProvider("b", default=fail(UpstreamFailure.CONNECT))
    router = make_router(snapshot(providers, routes), {"a": a, "b": b})
    res = router.resolve(model="chat", task=None, privacy=None, principal=ANONYMOUS)
    for _ in range(3):
        with pytest.raises(NoTargetLeft):
            await router.chat(res, chat_request(), context(clock))
    clock.advance(4.0)
    with pytest.raises(NoTargetLeft) as info:
        await router.chat(res, chat_request(), context(clock))
    assert [x.outcome for x in info.value.attempts] == [AttemptOutcome.CIRCUIT_OPEN] * 2
    assert info.value.retry_after_s == pytest.approx(6.0)
    assert a.upstream_calls() == b.upstream_calls() == 3


async def test_readiness_follows_breakers(make_router: MakeRouter) -> None:
    breaker = {"failure_threshold": 1, "reset_timeout_s": 0.05}
    providers = {"a": local(breaker=breaker)}
    routes = {"chat": {"targets": [{"provider": "a", "model": "m"}]}}
    a = FakeProvider("a", [fail(UpstreamFailure.CONNECT)])
    readiness = Readiness()
    router = make_router(
        snapshot(providers, routes), {"a": a}, on_readiness=readiness, clock=time.monotonic
    )
    await router.start()
    assert readiness.values == [True]
    res = router.resolve(model="chat", task=None, privacy=None, principal=ANONYMOUS)
    with pytest.raises(NoTargetLeft):
        await router.chat(res, chat_request(), context(time.monotonic))
    assert readiness.values == [True, False]
    assert not router.ready
    assert router.health_view().routes[0].usable_targets == 0
    # No call arrives (an unready pod gets no traffic), yet readiness returns by itself.
    for _ in range(50):
        if readiness.values[-1]:
            break
        await asyncio.sleep(0.01)
    assert readiness.values == [True, False, True]
    assert router.ready


class Peers:
    """A ``BreakerPeers`` that links routers in one process (Redis does it between replicas)."""

    def __init__(self) -> None:
        self.published: list[tuple[str, str, str, float]] = []
        self.routers: list = []  # type: ignore[type-arg]

    def publish(self, provider: str, model: str, state: str, opened_at: float) -> None:
        self.published.append((provider, model, state, opened_at))
        for router in self.routers:
            router.apply_peer_transition(provider, model, state, opened_at)


async def test_transitions_go_to_peers_and_peers_apply_them(
    make_router: MakeRouter, clock: FakeClock
) -> None:
    providers, routes = two_targets()
    snap = snapshot(providers, routes)
    peers = Peers()
    a = FakeProvider("a", default=fail(UpstreamFailure.CONNECT))
    one = make_router(snap, {"a": a, "b": FakeProvider("b")}, peers=peers)
    other_a = FakeProvider("a")
    observer = RecordingObserver()
    other = make_router(snap, {"a": other_a, "b": FakeProvider("b")}, observer=observer)
    peers.routers.append(other)
    res = one.resolve(model="chat", task=None, privacy=None, principal=ANONYMOUS)
    for _ in range(3):
        await one.chat(res, chat_request(), context(clock))
    assert [(p, m, s) for p, m, s, _ in peers.published] == [("a", "m", "open")]
    assert abs(peers.published[0][3] - time.time()) < 60  # wall clock on the wire
    # The peer adopted it: open, counted from the same opening, without any call of its own.
    assert target(other, "a").breaker_state is BreakerState.OPEN
    assert observer.transitions == [("a", "m", "closed", "open")]
    res2 = other.resolve(model="chat", task=None, privacy=None, principal=ANONYMOUS)
    result = await other.chat(res2, chat_request(), context(clock))
    assert result.attempts[0].outcome is AttemptOutcome.CIRCUIT_OPEN
    assert other_a.upstream_calls() == 0
    # Peer transitions are not published again (no echo between replicas).
    assert len(peers.published) == 1


async def test_a_peer_probing_keeps_this_replica_out_until_its_verdict(
    make_router: MakeRouter, clock: FakeClock
) -> None:
    providers, routes = two_targets()
    a = FakeProvider("a")
    router = make_router(snapshot(providers, routes), {"a": a, "b": FakeProvider("b")})
    res = router.resolve(model="chat", task=None, privacy=None, principal=ANONYMOUS)
    router.apply_peer_transition("a", "m", "open", time.time() - 12.0)
    assert target(router, "a").available  # opened 12 s ago: the 10 s timeout has passed
    router.apply_peer_transition("a", "m", "half_open", 0.0)
    result = await router.chat(res, chat_request(), context(clock))
    assert result.attempts[0].outcome is AttemptOutcome.CIRCUIT_OPEN
    assert a.upstream_calls() == 0
    router.apply_peer_transition("a", "m", "closed", 0.0)
    result = await router.chat(res, chat_request(), context(clock))
    assert result.provider == "a"
    # A peer that never reports back holds this replica off one reset timeout at most.
    router.apply_peer_transition("a", "m", "half_open", 0.0)
    clock.advance(10.0)
    result = await router.chat(res, chat_request(), context(clock))
    assert result.provider == "a"
    assert target(router, "a").breaker_state is BreakerState.CLOSED
    router.apply_peer_transition("nobody", "m", "open", time.time())  # unknown: ignored
    router.apply_peer_transition("a", "m", "sideways", 0.0)  # unknown state: ignored


async def test_result_after_a_peer_opened_is_ignored(
    make_router: MakeRouter, clock: FakeClock
) -> None:
    """A call in flight when a peer opens the breaker ends without counting twice."""
    providers, routes = two_targets()
    peers = Peers()
    slow_a = FakeProvider("a", default=fail(UpstreamFailure.CONNECT))
    slow_a.gate = asyncio.Event()
    router = make_router(
        snapshot(providers, routes), {"a": slow_a, "b": FakeProvider("b")}, peers=peers
    )
    res = router.resolve(model="chat", task=None, privacy=None, principal=ANONYMOUS)
    in_flight = asyncio.create_task(router.chat(res, chat_request(), context(clock)))
    while slow_a.entered == 0:
        await asyncio.sleep(0)
    router.apply_peer_transition("a", "m", "open", time.time())
    slow_a.gate.set()
    result = await in_flight
    assert result.provider == "b"
    health = target(router, "a")
    assert health.breaker_state is BreakerState.OPEN
    assert health.consecutive_failures == 0
    assert peers.published == []
