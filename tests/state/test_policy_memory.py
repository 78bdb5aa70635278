"""RequestPolicy on the memory backend: limits, budget, cache and stats."""

from __future__ import annotations

import asyncio

import pytest

from llm_gateway_server.core.errors import LimitExceeded
from llm_gateway_server.core.types import CacheMode, EmbedRequest, Principal, Usage
from llm_gateway_server.state import GatewayState, build_state
from tests.state.requests import answer, chat
from tests.state.snapshots import auth_with, key_entry, make_snapshot


async def state_with(**key_settings: object) -> tuple[GatewayState, Principal]:
    snapshot = make_snapshot(auth=auth_with(key_entry("key-a", "team-a", **key_settings)))
    state = await build_state(snapshot)
    return state, await state.keys.authenticate("key-a")


async def test_request_rate_limit_refuses_with_retry_info() -> None:
    state, principal = await state_with(rpm=3)
    policy = state.policy
    for _ in range(3):
        await answer(policy, await policy.admit(principal, "chat", chat(temperature=None)))
    with pytest.raises(LimitExceeded) as refused:
        await policy.admit(principal, "chat", chat(temperature=None))
    assert refused.value.reason == "RATE_LIMITED"
    assert refused.value.retry_after_s is not None
    assert 0 < refused.value.retry_after_s <= 60
    assert refused.value.metadata["tenant"] == "team-a"
    # Another tenant has its own window.
    other = Principal(tenant="team-b", rpm=3)
    await policy.admit(other, "chat", chat(temperature=None))


async def test_per_route_limit_applies_to_that_route_only() -> None:
    state, principal = await state_with(rpm=10, route_limits={"chat": {"rpm": 2}})
    policy = state.policy
    for _ in range(2):
        await policy.admit(principal, "chat", chat(temperature=None))
    with pytest.raises(LimitExceeded) as refused:
        await policy.admit(principal, "chat", chat(temperature=None))
    assert refused.value.metadata["route"] == "chat"
    await policy.admit(principal, "paid", chat(temperature=None))


async def test_token_limit_counts_the_estimate_then_the_real_usage() -> None:
    state, principal = await state_with(tpm=100)
    policy = state.policy
    text = "x" * 200  # about 54 tokens with the message framing
    first = await policy.admit(principal, "chat", chat(text, temperature=None))
    assert first.estimated_tokens == 54
    await answer(policy, first, usage=Usage(50, 40))  # 90 tokens in all: 36 more
    with pytest.raises(LimitExceeded) as refused:
        await policy.admit(principal, "chat", chat(text, temperature=None))
    assert refused.value.reason == "TOKEN_RATE_LIMITED"
    assert refused.value.retry_after_s is not None


async def test_a_request_larger_than_the_token_limit_is_refused_outright() -> None:
    state, principal = await state_with(tpm=100)
    with pytest.raises(LimitExceeded) as refused:
        await state.policy.admit(principal, "chat", chat("x" * 1000, temperature=None))
    assert refused.value.reason == "TOKEN_RATE_LIMITED"
    assert refused.value.retry_after_s is None


async def test_embeddings_count_tokens_too() -> None:
    state, principal = await state_with(tpm=20)
    request = EmbedRequest(inputs=("x" * 40, "y" * 40))  # 11 + 11 tokens
    with pytest.raises(LimitExceeded):
        await state.policy.admit(principal, "chat", request)


async def test_budget_reservations_refuse_what_does_not_fit_and_fail_releases() -> None:
    state, principal = await state_with(budget_usd=0.05)
    policy = state.policy
    held = [await policy.admit(principal, "paid", chat(temperature=None)) for _ in range(5)]
    assert all(a.reservation is not None for a in held)
    with pytest.raises(LimitExceeded) as refused:
        await policy.admit(principal, "paid", chat(temperature=None))
    assert refused.value.reason == "BUDGET_EXCEEDED"
    assert refused.value.retry_after_s is not None and refused.value.retry_after_s > 0
    await policy.fail(held[0], error_reason="ALL_TARGETS_FAILED")
    await policy.admit(principal, "paid", chat(temperature=None))


async def test_local_routes_are_free_and_never_refused_for_budget() -> None:
    state, principal = await state_with(budget_usd=0)
    admission = await state.policy.admit(principal, "chat", chat(temperature=None))
    assert admission.reservation is None
    with pytest.raises(LimitExceeded):
        await state.policy.admit(principal, "paid", chat(temperature=None))


async def test_unknown_price_needs_budget_left() -> None:
    state, principal = await state_with(budget_usd=0)
    # A direct target on a provider without prices for this model: price unknown.
    with pytest.raises(LimitExceeded) as refused:
        await state.policy.admit(principal, "cloud/unpriced", chat(temperature=None))
    assert refused.value.reason == "BUDGET_EXCEEDED"


async def test_concurrent_calls_cannot_overrun_a_nearly_spent_budget() -> None:
    state, principal = await state_with(budget_usd=1.0)
    policy = state.policy
    # Spend 0.95 USD: room left for exactly five calls of 0.01 USD.
    first = await policy.admit(principal, "paid", chat(temperature=None))
    await answer(policy, first, cost_usd=0.95)

    async def call() -> bool:
        try:
            admission = await policy.admit(principal, "paid", chat(temperature=None))
        except LimitExceeded:
            return False
        await asyncio.sleep(0)  # let the others interleave while this one is in flight
        await answer(policy, admission, cost_usd=0.01)
        return True

    outcomes = await asyncio.gather(*(call() for _ in range(200)))
    _, budgets = await state.stats.query("team-a", None)
    overrun = budgets[0].spent_usd - 1.0
    assert sum(outcomes) == 5
    assert overrun <= 1e-9


async def test_cache_miss_then_hit_with_its_origin() -> None:
    state, principal = await state_with()
    policy = state.policy
    miss = await policy.admit(principal, "chat", chat())
    assert miss.cache_key is not None and miss.cached is None
    reply = await answer(policy, miss, provider="local", model="x")
    hit = await policy.admit(principal, "chat", chat())
    assert hit.cached is not None
    assert (hit.cached.answer, hit.cached.provider, hit.cached.model) == (reply, "local", "x")
    assert hit.cached.route == "chat"
    # complete/fail after a hit are harmless no-ops.
    await policy.fail(hit, error_reason="CANCELLED")
    stats, _ = await state.stats.query("team-a", "chat")
    assert (stats[0].requests, stats[0].cache_hits, stats[0].cache_misses) == (2, 1, 1)
    assert stats[0].errors == 0
    assert stats[0].cache_hit_rate == 0.5


async def test_bypass_non_zero_temperature_and_zero_ttl_store_nothing() -> None:
    state, principal = await state_with()
    policy = state.policy
    bypass = await policy.admit(principal, "chat", chat(mode=CacheMode.BYPASS))
    assert bypass.cache_key is None
    await answer(policy, bypass)
    warm = await policy.admit(principal, "chat", chat(temperature=0.7))
    assert warm.cache_key is None
    await answer(policy, warm)
    zero_ttl = await policy.admit(principal, "chat", chat("z", ttl_s=0))
    await answer(policy, zero_ttl)
    assert (await policy.admit(principal, "chat", chat("z"))).cached is None
    # Bypass does not read either: the answer stored above is not served to it.
    stored = await policy.admit(principal, "chat", chat("s"))
    await answer(policy, stored)
    assert (await policy.admit(principal, "chat", chat("s", mode=CacheMode.BYPASS))).cached is None
    assert (await policy.admit(principal, "chat", chat("s"))).cached is not None


async def test_opt_in_caches_a_non_zero_temperature() -> None:
    state, principal = await state_with()
    policy = state.policy
    first = await policy.admit(principal, "chat", chat(temperature=0.9, mode=CacheMode.ENABLED))
    await answer(policy, first)
    again = await policy.admit(principal, "chat", chat(temperature=0.9, mode=CacheMode.ENABLED))
    assert again.cached is not None


async def test_cache_is_per_tenant_unless_shared() -> None:
    for shared, expect_hit in ((False, False), (True, True)):
        state = await build_state(make_snapshot(cache={"shared_across_tenants": shared}))
        policy = state.policy
        first = await policy.admit(Principal(tenant="a"), "chat", chat())
        await answer(policy, first)
        other = await policy.admit(Principal(tenant="b"), "chat", chat())
        assert (other.cached is not None) is expect_hit


async def test_a_cache_hit_counts_against_rpm_but_not_the_budget() -> None:
    state, principal = await state_with(rpm=2, budget_usd=0.01)
    policy = state.policy
    first = await policy.admit(principal, "paid", chat())
    await answer(policy, first, cost_usd=0.01, provider="cloud", model="m1")  # budget spent
    hit = await policy.admit(principal, "paid", chat())
    assert hit.cached is not None
    with pytest.raises(LimitExceeded) as refused:
        await policy.admit(principal, "paid", chat())
    assert refused.value.reason == "RATE_LIMITED"


async def test_stats_count_tokens_cost_errors_fallbacks_and_refusals() -> None:
    state, principal = await state_with(rpm=4, budget_usd=10, budget_period="day")
    policy = state.policy
    one = await policy.admit(principal, "paid", chat(temperature=None))
    await answer(policy, one, usage=Usage(10, 20), cost_usd=0.25, fallbacks=1)
    two = await policy.admit(principal, "paid", chat(temperature=None))
    await policy.fail(two, error_reason="ALL_TARGETS_FAILED")
    three = await policy.admit(principal, "chat", chat(temperature=None))
    await answer(policy, three, usage=Usage(1, 1))
    await policy.admit(principal, "chat", chat(temperature=None))  # fourth: never settled
    with pytest.raises(LimitExceeded):
        await policy.admit(principal, "chat", chat(temperature=None))

    stats, budgets = await state.stats.query(None, None)
    by_route = {s.route: s for s in stats}
    paid = by_route["paid"]
    assert (paid.requests, paid.errors, paid.fallbacks) == (2, 1, 1)
    assert (paid.prompt_tokens, paid.completion_tokens) == (10, 20)
    assert paid.cost_usd == pytest.approx(0.25)
    chat_stats = by_route["chat"]
    assert (chat_stats.requests, chat_stats.errors) == (2, 1)  # one answered, one refused
    assert [(b.tenant, b.budget_usd, b.period) for b in budgets] == [("team-a", 10, "day")]
    assert budgets[0].spent_usd == pytest.approx(0.25)

    only_chat, _ = await state.stats.query("team-a", "chat")
    assert [s.route for s in only_chat] == ["chat"]
    nobody, no_budgets = await state.stats.query("nobody", None)
    assert (nobody, no_budgets) == ([], [])


async def test_swap_changes_cache_settings() -> None:
    state = await build_state(make_snapshot())
    state.swap(make_snapshot(cache={"enabled": False}))
    admission = await state.policy.admit(Principal(tenant="a"), "chat", chat())
    assert admission.cache_key is None


async def test_memory_mode_shares_no_breakers() -> None:
    state = await build_state(make_snapshot())
    assert state.backend == "memory"
    assert state.breaker_peers is None
    await state.aclose()


async def test_an_answer_without_usage_keeps_the_estimate() -> None:
    state, principal = await state_with(tpm=100)
    policy = state.policy
    admission = await policy.admit(principal, "chat", chat("x" * 200, temperature=None))
    await policy.complete(admission, answer_usage=None, cost_usd=None, provider="local", model="x")
    stats, _ = await state.stats.query("team-a", None)
    assert (stats[0].requests, stats[0].prompt_tokens, stats[0].cost_usd) == (1, 0, 0.0)
    await policy.admit(principal, "chat", chat("y" * 100, temperature=None))  # 54 + 29 fits
