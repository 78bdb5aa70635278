"""Per-provider concurrency limits and load balancing within a tier."""

from __future__ import annotations

import asyncio
import collections
import random
import time

import pytest

from llm_gateway_server.core.errors import DeadlineExceeded, LimitExceeded
from llm_gateway_server.core.types import ANONYMOUS, AttemptOutcome
from llm_gateway_server.routing.concurrency import ConcurrencyLimited
from tests.routing.conftest import MakeRouter
from tests.routing.fakes import (
    FakeClock,
    FakeProvider,
    chat_request,
    context,
    local,
    snapshot,
)


async def wait_entered(p: FakeProvider, n: int) -> None:
    while p.entered < n:
        await asyncio.sleep(0)


async def test_full_queue_moves_on_then_resource_exhausted(
    make_router: MakeRouter, clock: FakeClock
) -> None:
    providers = {"gpu": local(max_in_flight=1, max_queue=0), "other": local()}
    routes = {
        "chat": {
            "targets": [{"provider": "gpu", "model": "m"}, {"provider": "other", "model": "m"}]
        },
        "only": {"default": False, "targets": [{"provider": "gpu", "model": "m"}]},
    }
    gpu, other = FakeProvider("gpu"), FakeProvider("other")
    gpu.gate = asyncio.Event()
    router = make_router(snapshot(providers, routes), {"gpu": gpu, "other": other})
    res = router.resolve(model="chat", task=None, privacy=None, principal=ANONYMOUS)
    busy = asyncio.create_task(router.chat(res, chat_request(), context(clock)))
    await wait_entered(gpu, 1)
    # The GPU box is full: the call moves on to the next target.
    result = await router.chat(res, chat_request(), context(clock))
    assert result.provider == "other"
    assert result.attempts[0].outcome is AttemptOutcome.CONCURRENCY_LIMITED
    # With no other target: RESOURCE_EXHAUSTED (LimitExceeded), not UNAVAILABLE.
    only = router.resolve(model="only", task=None, privacy=None, principal=ANONYMOUS)
    with pytest.raises(LimitExceeded) as info:
        await router.chat(only, chat_request(), context(clock))
    assert isinstance(info.value, ConcurrencyLimited)
    assert info.value.reason == "CONCURRENCY_LIMITED"
    # ErrorInfo names the provider's limits; RetryInfo says when a slot may be free.
    assert info.value.metadata == {"provider": "gpu", "max_in_flight": "1", "max_queue": "0"}
    assert info.value.retry_after_s is not None and info.value.retry_after_s > 0
    assert router.health_view().providers[0].in_flight == 1
    gpu.gate.set()
    assert (await busy).provider == "gpu"
    # The rejected calls never touched the busy upstream or its breaker.
    assert gpu.upstream_calls() == 1
    assert router.health_view().targets[0].consecutive_failures == 0


async def test_queue_waits_in_order_and_respects_deadline(make_router: MakeRouter) -> None:
    providers = {"gpu": local(max_in_flight=1, max_queue=2)}
    routes = {"chat": {"targets": [{"provider": "gpu", "model": "m"}]}}
    gpu = FakeProvider("gpu")
    gpu.gate = asyncio.Event()
    router = make_router(snapshot(providers, routes), {"gpu": gpu}, clock=time.monotonic)
    res = router.resolve(model="chat", task=None, privacy=None, principal=ANONYMOUS)
    first = asyncio.create_task(router.chat(res, chat_request(), context(time.monotonic)))
    await wait_entered(gpu, 1)
    queued = asyncio.create_task(router.chat(res, chat_request(), context(time.monotonic)))
    await asyncio.sleep(0.01)
    assert router.health_view().providers[0].queued == 1
    # A queued call whose deadline passes leaves the queue with DEADLINE_EXCEEDED.
    with pytest.raises(DeadlineExceeded):
        await router.chat(res, chat_request(), context(time.monotonic, deadline_s=0.05))
    assert router.health_view().providers[0].queued == 1
    gpu.gate.set()
    assert (await first).provider == "gpu"
    assert (await queued).provider == "gpu"
    view = router.health_view().providers[0]
    assert (view.in_flight, view.queued, view.max_in_flight) == (0, 0, 1)


def tier_routes(balancing: str, weights: tuple[int, int] = (1, 1)) -> dict:  # type: ignore[type-arg]
    return {
        "chat": {
            "balancing": balancing,
            "targets": [
                {"provider": "h1", "model": "m", "tier": 0, "weight": weights[0]},
                {"provider": "h2", "model": "m", "tier": 0, "weight": weights[1]},
                {"provider": "backup", "model": "m", "tier": 1},
            ],
        }
    }


PROVIDERS = {"h1": local(), "h2": local(), "backup": local()}


async def test_weighted_balancing_follows_weights(
    make_router: MakeRouter, clock: FakeClock
) -> None:
    fakes = {n: FakeProvider(n) for n in PROVIDERS}
    router = make_router(
        snapshot(PROVIDERS, tier_routes("weighted", (3, 1))), fakes, rng=random.Random(1)
    )
    res = router.resolve(model="chat", task=None, privacy=None, principal=ANONYMOUS)
    counts: collections.Counter[str] = collections.Counter()
    for _ in range(400):
        counts[(await router.chat(res, chat_request(), context(clock))).provider] += 1
        await asyncio.sleep(0)  # fake calls never suspend: let the loop breathe
    assert counts["backup"] == 0
    assert 240 < counts["h1"] < 360  # 3:1 of 400 = 300
    assert counts["h1"] + counts["h2"] == 400


async def test_least_outstanding_picks_the_idle_host(
    make_router: MakeRouter, clock: FakeClock
) -> None:
    fakes = {n: FakeProvider(n) for n in PROVIDERS}
    router = make_router(snapshot(PROVIDERS, tier_routes("least_outstanding")), fakes)
    res = router.resolve(model="chat", task=None, privacy=None, principal=ANONYMOUS)
    gate = asyncio.Event()
    for p in fakes.values():
        p.gate = gate
    first = asyncio.create_task(router.chat(res, chat_request(), context(clock)))
    while fakes["h1"].entered + fakes["h2"].entered < 1:
        await asyncio.sleep(0)
    busy = "h1" if fakes["h1"].entered else "h2"
    idle = "h2" if busy == "h1" else "h1"
    second = asyncio.create_task(router.chat(res, chat_request(), context(clock)))
    await wait_entered(fakes[idle], 1)
    gate.set()
    assert {(await first).provider, (await second).provider} == {busy, idle}


async def test_lowest_latency_prefers_the_faster_host(make_router: MakeRouter) -> None:
    fakes = {n: FakeProvider(n) for n in PROVIDERS}
    clock = FakeClock()
    router = make_router(snapshot(PROVIDERS, tier_routes("lowest_latency")), fakes, clock=clock)
    # Feed the windows: h1 answered in 2 s, h2 in 0.5 s.
    view = {
        t.provider: t
        for t in router.resolve(model="chat", task=None, privacy=None, principal=ANONYMOUS).targets
    }
    for _ in range(5):
        view["h1"].state.stats.window.add(2.0, ok=True)
        view["h2"].state.stats.window.add(0.5, ok=True)
    res = router.resolve(model="chat", task=None, privacy=None, principal=ANONYMOUS)
    providers = {
        (await router.chat(res, chat_request(), context(clock))).provider for _ in range(20)
    }
    assert providers == {"h2"}
    health = {t.provider: t for t in router.health_view().targets}
    assert health["h1"].latency_p50_s == 2.0
    assert health["h1"].latency_p95_s == 2.0
    assert health["h2"].window_calls == 25
