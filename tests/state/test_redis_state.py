"""The state layer on a real redis-server: shared limits, budgets, cache, stats and keys."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import orjson
import pytest
import redis.asyncio

from llm_gateway_server.core.errors import LimitExceeded, Unauthenticated
from llm_gateway_server.core.types import CacheMode, Principal, Usage
from llm_gateway_server.state import GatewayState, build_state
from tests.state.flushes import stats_once
from tests.state.requests import answer, chat
from tests.state.snapshots import auth_with, key_entry, make_snapshot

pytestmark = pytest.mark.redis

StateFactory = Callable[..., Coroutine[Any, Any, GatewayState]]


@pytest.fixture
async def replicas(redis_url: str) -> AsyncIterator[StateFactory]:
    """Builds GatewayStates ("replicas") on the test's Redis; closes them afterwards."""
    built: list[GatewayState] = []

    async def build(**sections: Any) -> GatewayState:
        sections.setdefault("state", {"redis_url": redis_url})
        state = await build_state(make_snapshot(**sections))
        built.append(state)
        return state

    yield build
    for state in built:
        await state.aclose()


async def test_backend_is_redis(replicas: StateFactory) -> None:
    state = await replicas()
    assert state.backend == "redis"


async def test_request_limit_holds_across_replicas(replicas: StateFactory) -> None:
    one, two = await replicas(), await replicas()
    principal = Principal(tenant="team-a", rpm=5)
    admitted = 0
    refusals: list[LimitExceeded] = []
    for i in range(8):
        state = one if i % 2 else two
        try:
            await state.policy.admit(principal, "chat", chat(temperature=None))
            admitted += 1
        except LimitExceeded as exc:
            refusals.append(exc)
    assert admitted == 5
    assert [e.reason for e in refusals] == ["RATE_LIMITED"] * 3
    assert all(e.retry_after_s is not None and 0 < e.retry_after_s <= 60 for e in refusals)


async def test_token_limit_holds_across_replicas(replicas: StateFactory) -> None:
    one, two = await replicas(), await replicas()
    principal = Principal(tenant="team-a", tpm=100)
    first = await one.policy.admit(principal, "chat", chat("x" * 200, temperature=None))
    await answer(one.policy, first, usage=Usage(50, 40))
    with pytest.raises(LimitExceeded) as refused:
        await two.policy.admit(principal, "chat", chat("x" * 200, temperature=None))
    assert refused.value.reason == "TOKEN_RATE_LIMITED"


async def test_concurrent_calls_on_two_replicas_cannot_overrun_a_budget(
    replicas: StateFactory,
) -> None:
    one, two = await replicas(), await replicas()
    principal = Principal(tenant="team-a", budget_usd=1.0)
    first = await one.policy.admit(principal, "paid", chat(temperature=None))
    await answer(one.policy, first, cost_usd=0.95)  # room left for five calls of 0.01 USD

    reasons: list[str] = []

    async def call(state: GatewayState) -> bool:
        try:
            admission = await state.policy.admit(principal, "paid", chat(temperature=None))
        except LimitExceeded as exc:
            reasons.append(exc.reason)
            return False
        await asyncio.sleep(0.01)
        await answer(state.policy, admission, cost_usd=0.01)
        return True

    outcomes = await asyncio.gather(*(call(one if i % 2 else two) for i in range(200)))
    _, budgets = await two.stats.query("team-a", None)
    overrun = budgets[0].spent_usd - 1.0
    assert sum(outcomes) == 5
    assert overrun <= 1e-9
    assert set(reasons) == {"BUDGET_EXCEEDED"}


async def test_failed_calls_release_their_reservation(replicas: StateFactory) -> None:
    state = await replicas()
    principal = Principal(tenant="team-a", budget_usd=0.02)
    held = [await state.policy.admit(principal, "paid", chat(temperature=None)) for _ in range(2)]
    with pytest.raises(LimitExceeded):
        await state.policy.admit(principal, "paid", chat(temperature=None))
    await state.policy.fail(held[0], error_reason="ALL_TARGETS_FAILED")
    await state.policy.admit(principal, "paid", chat(temperature=None))


async def test_an_answer_cached_through_one_replica_is_served_by_the_other(
    replicas: StateFactory,
) -> None:
    one, two = await replicas(), await replicas()
    principal = Principal(tenant="team-a")
    miss = await one.policy.admit(principal, "chat", chat())
    reply = await answer(one.policy, miss, provider="local", model="x")
    hit = await two.policy.admit(principal, "chat", chat())
    assert hit.cached is not None
    assert (hit.cached.answer, hit.cached.provider, hit.cached.route) == (reply, "local", "chat")
    assert (await two.policy.admit(Principal(tenant="team-b"), "chat", chat())).cached is None
    bypass = await two.policy.admit(principal, "chat", chat(mode=CacheMode.BYPASS))
    assert bypass.cached is None


async def test_cache_entries_expire_at_their_ttl(replicas: StateFactory, redis_url: str) -> None:
    state = await replicas()
    principal = Principal(tenant="team-a")
    short = await state.policy.admit(principal, "chat", chat("short", ttl_s=0.2))
    await answer(state.policy, short)
    client = redis.asyncio.Redis.from_url(redis_url)
    keys = await client.keys("llmgw:cache:*")
    assert len(keys) == 1
    assert 0 < await client.pttl(keys[0]) <= 200
    await client.aclose()
    assert (await state.policy.admit(principal, "chat", chat("short"))).cached is not None
    await asyncio.sleep(0.3)
    assert (await state.policy.admit(principal, "chat", chat("short"))).cached is None


async def test_stats_are_shared_and_summed(replicas: StateFactory) -> None:
    one, two = await replicas(), await replicas()
    principal = Principal(tenant="team-a", budget_usd=5, budget_period="week")
    for state, cost in ((one, 0.5), (two, 0.25)):
        admission = await state.policy.admit(principal, "paid", chat())
        if admission.cached is None:
            await answer(state.policy, admission, usage=Usage(3, 4), cost_usd=cost, fallbacks=1)
    failed = await two.policy.admit(principal, "paid", chat(temperature=None))
    await two.policy.fail(failed, error_reason="ALL_TARGETS_FAILED")

    # Replica two's counters reach Redis with its next background flush.
    stats, budgets = await stats_once(one, lambda rows: sum(r.requests for r in rows) >= 3)
    assert len(stats) == 1
    paid = stats[0]
    assert (paid.tenant, paid.route) == ("team-a", "paid")
    # The second call was a cache hit through replica two: no tokens, no cost.
    assert (paid.requests, paid.errors, paid.cache_hits, paid.cache_misses) == (3, 1, 1, 1)
    assert (paid.prompt_tokens, paid.completion_tokens, paid.fallbacks) == (3, 4, 1)
    assert paid.cost_usd == pytest.approx(0.5)
    assert paid.cache_hit_rate == 0.5
    assert [(b.tenant, b.budget_usd, b.period) for b in budgets] == [("team-a", 5.0, "week")]
    assert budgets[0].spent_usd == pytest.approx(0.5)
    assert await one.stats.query("team-a", "chat") == ([], budgets)


async def test_keys_are_read_from_the_redis_hash(replicas: StateFactory, redis_url: str) -> None:
    digest = hashlib.sha256(b"redis-key").hexdigest()
    client = redis.asyncio.Redis.from_url(redis_url)
    await client.hset(
        "llmgw:apikeys", digest, orjson.dumps({"name": "team-r", "rpm": 7, "routes": ["chat"]})
    )
    await client.hset("llmgw:apikeys", hashlib.sha256(b"broken").hexdigest(), b"{not json")
    state = await replicas(
        auth={**auth_with(key_entry("config-key", "team-c")), "redis_key_cache_s": 0}
    )
    principal = await state.keys.authenticate("redis-key")
    assert (principal.tenant, principal.rpm, principal.routes) == ("team-r", 7, frozenset({"chat"}))
    assert (await state.keys.authenticate("config-key")).tenant == "team-c"
    for bad in ("broken", "unknown"):
        with pytest.raises(Unauthenticated) as refused:
            await state.keys.authenticate(bad)
        assert refused.value.reason == "API_KEY_INVALID"
    await client.hdel("llmgw:apikeys", digest)  # revoked
    with pytest.raises(Unauthenticated):
        await state.keys.authenticate("redis-key")
    await client.aclose()
