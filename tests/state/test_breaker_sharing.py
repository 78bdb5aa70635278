"""Breakers shared between replicas through a real redis-server, never on the request path.

Each replica is a Router with its own GatewayState (its own Redis client and sharing
tasks), as two gateway processes have.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import pytest

from llm_gateway_server.core.errors import UpstreamFailure
from llm_gateway_server.core.types import ANONYMOUS, AttemptOutcome
from llm_gateway_server.routing.breakers import BreakerState
from llm_gateway_server.routing.router import Router
from llm_gateway_server.state import GatewayState, build_state
from tests.routing.fakes import FakeProvider, chat_request, context, fail, local
from tests.state.delay_proxy import DelayProxy
from tests.state.redis_server import RedisServer
from tests.state.snapshots import make_snapshot

pytestmark = pytest.mark.redis

RETRY_S = 0.2
#: The issue's bound: a transition reaches every replica within a second.
CONVERGE_S = 1.0


@dataclass
class Replica:
    router: Router
    state: GatewayState
    flaky: FakeProvider
    steady: FakeProvider

    def breaker(self, provider: str) -> BreakerState:
        health = self.router.health_view()
        return next(t.breaker_state for t in health.targets if t.provider == provider)


Start = Callable[..., Coroutine[Any, Any, Replica]]


def _sections(redis_url: str) -> dict[str, Any]:
    breaker = {"failure_threshold": 1, "reset_timeout_s": 60}
    return {
        "providers": {
            "flaky": local(breaker=breaker, timeout_s=5),
            "steady": local(breaker=breaker, timeout_s=5),
        },
        "routes": {
            "fragile": {"targets": [{"provider": "flaky", "model": "m"}]},
            "chat": {"targets": [{"provider": "steady", "model": "m"}]},
        },
        "state": {"redis_url": redis_url, "redis_retry_s": RETRY_S, "redis_timeout_s": 2.0},
    }


@pytest.fixture
async def start_replica() -> AsyncIterator[Start]:
    started: list[Replica] = []

    async def start(redis_url: str) -> Replica:
        snap = make_snapshot(**_sections(redis_url))
        state = await build_state(snap)
        flaky = FakeProvider("flaky", default=fail(UpstreamFailure.SERVER_ERROR))
        steady = FakeProvider("steady")
        router = Router(snap, {"flaky": flaky, "steady": steady}, peers=state.breaker_peers)
        await router.start()
        await state.start(on_peer_transition=router.apply_peer_transition)
        replica = Replica(router, state, flaky, steady)
        started.append(replica)
        return replica

    yield start
    for replica in started:
        await replica.router.aclose()
        await replica.state.aclose()


async def until(condition: Callable[[], bool], within_s: float) -> None:
    async with asyncio.timeout(within_s):
        while not condition():
            await asyncio.sleep(0.01)


def listening(replica: Replica) -> bool:
    peers = replica.state.breaker_peers
    return peers is not None and peers.listening


async def chat(replica: Replica, route: str) -> AttemptOutcome:
    res = replica.router.resolve(model=route, task=None, privacy=None, principal=ANONYMOUS)
    ctx = context(asyncio.get_running_loop().time, deadline_s=5)
    try:
        result = await replica.router.chat(res, chat_request(), ctx)
    except Exception as exc:  # every target failed or was skipped
        return exc.attempts[0].outcome  # type: ignore[attr-defined,no-any-return]
    return result.attempts[0].outcome


@pytest.mark.usefixtures("no_slow_callbacks")
async def test_a_breaker_opened_on_one_replica_is_open_on_the_other_within_a_second(
    redis_url: str, start_replica: Start
) -> None:
    one, two = await start_replica(redis_url), await start_replica(redis_url)
    await until(lambda: listening(one) and listening(two), 5.0)
    assert await chat(one, "fragile") is AttemptOutcome.UPSTREAM_ERROR
    assert one.breaker("flaky") is BreakerState.OPEN
    await until(lambda: two.breaker("flaky") is BreakerState.OPEN, CONVERGE_S)
    assert await chat(two, "fragile") is AttemptOutcome.CIRCUIT_OPEN
    assert two.flaky.upstream_calls() == 0  # replica two did not even try
    assert two.breaker("steady") is BreakerState.CLOSED
    # A replica that starts later reads the current state.
    three = await start_replica(redis_url)
    await until(lambda: three.breaker("flaky") is BreakerState.OPEN, CONVERGE_S)


@pytest.mark.usefixtures("no_slow_callbacks")
async def test_a_slow_redis_does_not_delay_unrelated_calls(
    redis_server: RedisServer, redis_url: str, start_replica: Start
) -> None:
    async with DelayProxy("127.0.0.1", redis_server.port, delay_s=0.2) as far:
        one = await start_replica(far.url)  # its Redis is 200 ms away, each way
        two = await start_replica(redis_url)
        await until(lambda: listening(one) and listening(two), 5.0)  # connections are warm
        assert await chat(one, "fragile") is AttemptOutcome.UPSTREAM_ERROR
        await until(lambda: far.in_transit > 0, 5.0)  # the transition is on the slow link
        # ... and calls do not wait for it: they run (yielding to the loop) meanwhile.
        outcomes = []
        for _ in range(10):
            outcomes.append(await chat(one, "chat"))
            await asyncio.sleep(0)
        assert outcomes == [AttemptOutcome.SUCCESS] * 10
        assert await chat(one, "fragile") is AttemptOutcome.CIRCUIT_OPEN  # local state
        assert far.in_transit > 0
        assert two.breaker("flaky") is BreakerState.CLOSED  # not there yet
        await until(lambda: two.breaker("flaky") is BreakerState.OPEN, CONVERGE_S)


async def test_redis_down_means_local_state_one_line_then_sharing_resumes(
    own_redis: RedisServer, start_replica: Start, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="llm_gateway_server.state")
    one, two = await start_replica(own_redis.url), await start_replica(own_redis.url)
    own_redis.stop()
    assert await chat(one, "fragile") is AttemptOutcome.UPSTREAM_ERROR
    assert one.breaker("flaky") is BreakerState.OPEN  # opened locally, no error
    assert await chat(one, "chat") is AttemptOutcome.SUCCESS
    await asyncio.sleep(RETRY_S * 3)  # several failed reconnections
    assert two.breaker("flaky") is BreakerState.CLOSED  # not shared while Redis is down
    down = [r for r in caplog.records if "unreachable" in r.getMessage()]
    assert len(down) == 2  # one line per replica, however many tries failed
    own_redis.restart()
    # The transition queued during the outage reaches the peer once Redis is back.
    await until(lambda: two.breaker("flaky") is BreakerState.OPEN, RETRY_S * 3 + CONVERGE_S)
    assert any("reachable again" in r.getMessage() for r in caplog.records)
