"""Redis killed and restarted mid-test: fail open or closed, one log line, recovery."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import orjson
import pytest
import redis.asyncio

from llm_gateway_server.core.errors import LimitExceeded, StateUnavailable, Unauthenticated
from llm_gateway_server.core.types import Principal
from llm_gateway_server.state import GatewayState, StatsUnavailable, build_state
from tests.state.redis_server import RedisServer
from tests.state.requests import answer, chat
from tests.state.snapshots import make_snapshot

pytestmark = pytest.mark.redis

StateFactory = Callable[..., Coroutine[Any, Any, GatewayState]]
RETRY_S = 0.2


@pytest.fixture
async def replicas(own_redis: RedisServer) -> AsyncIterator[StateFactory]:
    built: list[GatewayState] = []

    async def build(*, fail_open: bool = True) -> GatewayState:
        state_section = {
            "redis_url": own_redis.url,
            "limits_fail_open": fail_open,
            "redis_retry_s": RETRY_S,
            "redis_timeout_s": 0.3,
        }
        state = await build_state(make_snapshot(state=state_section))
        built.append(state)
        return state

    yield build
    for state in built:
        await state.aclose()


def outage_lines(caplog: pytest.LogCaptureFixture) -> tuple[int, int]:
    messages = [r.getMessage() for r in caplog.records]
    down = sum("unreachable" in m for m in messages)
    back = sum("reachable again" in m for m in messages)
    return down, back


async def wait_past_retry() -> None:
    await asyncio.sleep(RETRY_S * 1.5)


async def test_limits_fail_open_and_the_cache_is_bypassed_then_recover(
    replicas: StateFactory, own_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="llm_gateway_server.state")
    state = await replicas(fail_open=True)
    principal = Principal(tenant="team-a", rpm=2, budget_usd=1.0)
    cached = await state.policy.admit(principal, "chat", chat("cached"))
    await answer(state.policy, cached)

    own_redis.stop()
    # Over the limit of 2, yet let through: the limits fail open. Spread past the retry
    # pause so Redis is tried (and fails) more than once.
    for _ in range(3):
        admission = await state.policy.admit(principal, "paid", chat("cached"))
        assert admission.cached is None  # the cache fails open: a miss
        assert admission.reservation is None
        await answer(state.policy, admission, cost_usd=0.01)  # never raises
        await wait_past_retry()
    with pytest.raises(StatsUnavailable):
        await state.stats.query(None, None)
    assert outage_lines(caplog) == (1, 0)

    own_redis.restart()  # empty: no persistence
    await wait_past_retry()
    await state.policy.admit(principal, "chat", chat(temperature=None))
    await state.policy.admit(principal, "chat", chat(temperature=None))
    with pytest.raises(LimitExceeded):
        await state.policy.admit(principal, "chat", chat(temperature=None))
    assert outage_lines(caplog) == (1, 1)
    stored = await state.policy.admit(Principal(tenant="b"), "chat", chat("again"))
    await answer(state.policy, stored)
    assert (await state.policy.admit(Principal(tenant="b"), "chat", chat("again"))).cached


async def test_limits_fail_closed_when_configured_then_recover(
    replicas: StateFactory, own_redis: RedisServer
) -> None:
    state = await replicas(fail_open=False)
    limited = Principal(tenant="team-a", rpm=100)
    budgeted = Principal(tenant="team-b", budget_usd=1.0)
    await state.policy.admit(limited, "chat", chat(temperature=None))

    own_redis.stop()
    for _ in range(2):
        # Refused because the store is down, not because the caller is over a limit.
        with pytest.raises(StateUnavailable) as refused:
            await state.policy.admit(limited, "chat", chat(temperature=None))
        assert refused.value.reason == "STATE_UNAVAILABLE"
        assert refused.value.metadata["limit"] == "requests_per_minute"
        assert refused.value.retry_after_s is not None
    with pytest.raises(StateUnavailable) as no_budget:
        await state.policy.admit(budgeted, "paid", chat(temperature=None))
    assert no_budget.value.reason == "STATE_UNAVAILABLE"
    # A caller with neither limits nor budget needs no shared state: still served.
    await state.policy.admit(Principal(tenant="free"), "chat", chat())

    own_redis.restart()
    await wait_past_retry()
    await state.policy.admit(limited, "chat", chat(temperature=None))
    await state.policy.admit(budgeted, "paid", chat(temperature=None))


async def test_keys_seen_before_keep_working_while_redis_is_down(own_redis: RedisServer) -> None:
    client = redis.asyncio.Redis.from_url(own_redis.url)
    digest = hashlib.sha256(b"redis-key").hexdigest()
    await client.hset("llmgw:apikeys", digest, orjson.dumps({"name": "team-r"}))
    await client.aclose()
    auth = {"enabled": True, "redis_key_cache_s": 0}
    state_section = {"redis_url": own_redis.url, "redis_retry_s": RETRY_S}
    state = await build_state(make_snapshot(auth=auth, state=state_section))
    try:
        assert (await state.keys.authenticate("redis-key")).tenant == "team-r"
        own_redis.stop()
        assert (await state.keys.authenticate("redis-key")).tenant == "team-r"
        with pytest.raises(Unauthenticated):
            await state.keys.authenticate("never-seen")
    finally:
        await state.aclose()
