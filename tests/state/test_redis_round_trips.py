"""Redis traffic per request on a real redis-server: counted commands, batched stats."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import pytest
import redis.asyncio

from llm_gateway_server.core.errors import LimitExceeded
from llm_gateway_server.core.types import Principal, Usage
from llm_gateway_server.state import GatewayState, build_state, stats_writer
from llm_gateway_server.state.redis_health import StoreUnavailable
from llm_gateway_server.state.redis_ledger import RedisLedger
from llm_gateway_server.state.tokens import estimate_prompt_tokens
from tests.state.delay_proxy import DelayProxy
from tests.state.flushes import stats_once
from tests.state.monitor import CommandLog
from tests.state.redis_server import RedisServer
from tests.state.requests import answer, chat
from tests.state.snapshots import make_snapshot

pytestmark = pytest.mark.redis

StateFactory = Callable[..., Coroutine[Any, Any, GatewayState]]


@pytest.fixture
async def replicas(redis_url: str) -> AsyncIterator[StateFactory]:
    built: list[GatewayState] = []

    async def build(url: str = redis_url, **state: Any) -> GatewayState:
        built.append(await build_state(make_snapshot(state={"redis_url": url, **state})))
        return built[-1]

    yield build
    for state in built:
        await state.aclose()


@pytest.fixture
def no_background_flush(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stats reach Redis only through explicit flushes, so per-request counts are exact."""
    monkeypatch.setattr(stats_writer, "FLUSH_S", 3600.0)


async def warm_up(state: GatewayState, principal: Principal) -> None:
    """One request first: connecting (HELLO) and loading scripts are not per-request."""
    admission = await state.policy.admit(principal, "warm-up", chat("warm-up"))
    await answer(state.policy, admission)


def writer_of(state: GatewayState) -> stats_writer.StatsWriter:
    ledger = state.policy._ledger
    assert isinstance(ledger, RedisLedger)
    return ledger.writer


@pytest.mark.usefixtures("no_background_flush")
async def test_no_limits_no_cache_sends_nothing_per_request(
    replicas: StateFactory, redis_url: str
) -> None:
    state = await replicas()
    principal = Principal(tenant="team-a")
    async with CommandLog(redis_url) as log:
        admission = await state.policy.admit(principal, "chat", chat(temperature=None))
        assert await log.take() == []
        await answer(state.policy, admission, cost_usd=0.01)
        assert await log.take() == []
        assert writer_of(state).pending_rows == 1


@pytest.mark.usefixtures("no_background_flush")
async def test_a_cacheable_request_sends_one_get_and_one_set(
    replicas: StateFactory, redis_url: str
) -> None:
    state = await replicas()
    principal = Principal(tenant="team-a")
    await warm_up(state, principal)
    async with CommandLog(redis_url) as log:
        admission = await state.policy.admit(principal, "chat", chat("cache me"))
        assert await log.take() == ["GET"]
        await answer(state.policy, admission)
        assert await log.take() == ["SET"]
        hit = await state.policy.admit(principal, "chat", chat("cache me"))
        assert hit.cached is not None
        assert await log.take() == ["GET"]


@pytest.mark.usefixtures("no_background_flush")
async def test_limits_budget_and_cache_stay_within_their_bound(
    replicas: StateFactory, redis_url: str
) -> None:
    state = await replicas()
    principal = Principal(tenant="team-a", rpm=100, tpm=100_000, budget_usd=5.0)
    await warm_up(state, principal)
    async with CommandLog(redis_url) as log:
        admission = await state.policy.admit(principal, "paid", chat("limited"))
        assert admission.reservation is not None
        admitted = await log.take()
        await answer(state.policy, admission, cost_usd=0.01)
        completed = await log.take()
    # admit: rpm, the cache GET, tpm, the budget reservation; complete: the token
    # correction, the cache SET, the spend settlement. Stats are not among them.
    assert len(admitted) <= 4, admitted
    assert len(completed) <= 3, completed
    assert not {"HINCRBY", "INCRBY"} & set(admitted + completed)


@pytest.mark.usefixtures("no_background_flush")
async def test_a_batch_of_calls_is_one_increment_per_counter(
    replicas: StateFactory, redis_url: str
) -> None:
    state = await replicas()
    principal = Principal(tenant="team-a")
    for _ in range(50):
        admission = await state.policy.admit(principal, "chat", chat(temperature=None))
        await answer(state.policy, admission, usage=Usage(2, 3))
    async with CommandLog(redis_url) as log:
        await writer_of(state).flush()
        sent = await log.take()
    # requests, prompt_tokens, completion_tokens of one row, once each for 50 calls.
    assert sent.count("HINCRBY") == 3
    stats, _ = await state.stats.query("team-a", None)
    assert (stats[0].requests, stats[0].prompt_tokens, stats[0].completion_tokens) == (
        50,
        100,
        150,
    )


async def test_stats_reach_another_replica_by_the_background_flush(
    replicas: StateFactory,
) -> None:
    one, two = await replicas(), await replicas()
    for _ in range(3):
        admission = await one.policy.admit(
            Principal(tenant="team-a"), "chat", chat(temperature=None)
        )
        await answer(one.policy, admission)
    stats, _ = await stats_once(two, lambda rows: sum(r.requests for r in rows) >= 3)
    assert [(r.tenant, r.route, r.requests) for r in stats] == [("team-a", "chat", 3)]


async def test_counters_survive_an_outage_up_to_the_bound(
    own_redis: RedisServer,
    replicas: StateFactory,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(stats_writer, "MAX_ROWS", 2)
    caplog.set_level(logging.WARNING, logger="llm_gateway_server.state")
    state = await replicas(own_redis.url, redis_retry_s=0.1, redis_timeout_s=0.3)
    own_redis.stop()
    for route in ("a", "b", "c", "d", "a"):
        admission = await state.policy.admit(Principal(tenant="t"), route, chat(temperature=None))
        await answer(state.policy, admission)
    with pytest.raises(StoreUnavailable):
        await writer_of(state).flush()
    assert writer_of(state).pending_rows == 2  # a failed flush keeps its rows
    assert writer_of(state).dropped == 2
    assert sum("usage stats are dropped" in r.getMessage() for r in caplog.records) == 1
    own_redis.start()
    stats, _ = await stats_once(state, lambda rows: len(rows) == 2)
    assert [(r.route, r.requests) for r in stats] == [("a", 2), ("b", 1)]


async def test_a_slow_redis_does_not_hold_the_answer(
    redis_server: RedisServer, replicas: StateFactory
) -> None:
    # Far longer than the bound below: an awaited stats write could not finish inside it.
    async with DelayProxy("127.0.0.1", redis_server.port, delay_s=30.0) as far:
        state = await replicas(far.url, redis_timeout_s=60.0)
        async with asyncio.timeout(5.0):
            for _ in range(3):
                admission = await state.policy.admit(
                    Principal(tenant="team-a"), "chat", chat(temperature=None)
                )
                await answer(state.policy, admission, cost_usd=0.01)
        assert writer_of(state).pending_rows == 1
        await state.aclose()  # its last flush is bounded too


async def test_a_token_refusal_releases_the_budget_hold_granted_beside_it(
    replicas: StateFactory, redis_url: str
) -> None:
    state = await replicas()
    request = chat("x " * 20, temperature=None)
    # Room for one such request in the minute, not two.
    tokens = estimate_prompt_tokens(request)
    principal = Principal(tenant="team-a", tpm=tokens + tokens // 2, budget_usd=1.0)
    first = await state.policy.admit(principal, "paid", request)
    assert first.reservation is not None
    with pytest.raises(LimitExceeded) as refused:
        await state.policy.admit(principal, "paid", request)
    assert refused.value.reason == "TOKEN_RATE_LIMITED"
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        (resv,) = await client.keys("llmgw:resv:team-a:*")
        # Only the first call's hold is left: the refused call's own was let go.
        assert await client.hkeys(resv) == [first.reservation.id.encode()]
    finally:
        await client.aclose()


@pytest.mark.usefixtures("no_background_flush")
async def test_shutdown_writes_the_pending_stats(replicas: StateFactory) -> None:
    leaving, staying = await replicas(), await replicas()
    admission = await leaving.policy.admit(
        Principal(tenant="team-a"), "chat", chat(temperature=None)
    )
    await answer(leaving.policy, admission)
    assert writer_of(leaving).pending_rows == 1
    await leaving.aclose()
    stats, _ = await staying.stats.query("team-a", None)
    assert [(r.route, r.requests) for r in stats] == [("chat", 1)]
