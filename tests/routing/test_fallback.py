"""Fallback over targets, retries within a target, the deadline, final errors."""

from __future__ import annotations

import asyncio
import time

import pytest

from llm_gateway_server.core.errors import (
    DeadlineExceeded,
    NoTargetLeft,
    RequestInvalid,
    UpstreamError,
    UpstreamFailure,
)
from llm_gateway_server.core.types import (
    ANONYMOUS,
    AttemptOutcome,
    EmbedRequest,
    Privacy,
    Task,
)
from tests.routing.conftest import MakeRouter
from tests.routing.fakes import (
    CRASH,
    EMPTY,
    HANG,
    FakeClock,
    FakeProvider,
    RecordingObserver,
    RecordingSink,
    chat_request,
    context,
    fail,
    local,
    snapshot,
)


def chain(*names: str, **provider_cfg: object) -> tuple[dict, dict]:  # type: ignore[type-arg]
    providers = {n: local(**provider_cfg) for n in names}
    routes = {
        "chat": {"targets": [{"provider": n, "model": f"m-{n}"} for n in names]},
        "embedding": {
            "task": "embedding",
            "targets": [{"provider": n, "model": f"e-{n}"} for n in names],
        },
    }
    return providers, routes


async def test_primary_down_chat_succeeds_via_fallback(make_router: MakeRouter) -> None:
    providers, routes = chain("primary", "secondary")
    primary = FakeProvider("primary", default=fail(UpstreamFailure.CONNECT))
    secondary = FakeProvider("secondary")
    observer = RecordingObserver()
    router = make_router(
        snapshot(providers, routes), {"primary": primary, "secondary": secondary}, observer=observer
    )
    res = router.resolve(model="chat", task=None, privacy=None, principal=ANONYMOUS)
    result = await router.chat(res, chat_request(), context(router._clock))
    assert result.provider == "secondary"
    assert result.answer.content == "answer from secondary/m-secondary"
    assert [(a.provider, a.outcome) for a in result.attempts] == [
        ("primary", AttemptOutcome.UPSTREAM_ERROR),
        ("secondary", AttemptOutcome.SUCCESS),
    ]
    assert "connect" in result.attempts[0].error
    assert observer.fallbacks == [("chat", "primary", "m-primary")]
    assert [(i.provider, i.attempt, o) for i, o in observer.attempts] == [
        ("primary", 1, AttemptOutcome.UPSTREAM_ERROR),
        ("secondary", 2, AttemptOutcome.SUCCESS),
    ]
    assert all(s.finished == 1 for s in observer.scopes)


@pytest.mark.parametrize(
    ("behaviour", "outcome"),
    [
        (fail(UpstreamFailure.SERVER_ERROR), AttemptOutcome.UPSTREAM_ERROR),
        (fail(UpstreamFailure.RATE_LIMITED), AttemptOutcome.RATE_LIMITED),
        (fail(UpstreamFailure.TIMEOUT), AttemptOutcome.TIMEOUT),
        (fail(UpstreamFailure.BAD_RESPONSE), AttemptOutcome.UPSTREAM_ERROR),
        (fail(UpstreamFailure.NOT_FOUND), AttemptOutcome.UPSTREAM_ERROR),
        (fail(UpstreamFailure.AUTH), AttemptOutcome.UPSTREAM_ERROR),
        (EMPTY, AttemptOutcome.EMPTY_ANSWER),
        (CRASH, AttemptOutcome.UPSTREAM_ERROR),
    ],
)
async def test_retryable_failures_move_on(
    make_router: MakeRouter, clock: FakeClock, behaviour: object, outcome: AttemptOutcome
) -> None:
    providers, routes = chain("a", "b")
    a = FakeProvider("a", default=behaviour)  # type: ignore[arg-type]
    router = make_router(snapshot(providers, routes), {"a": a, "b": FakeProvider("b")})
    res = router.resolve(model="chat", task=None, privacy=None, principal=ANONYMOUS)
    result = await router.chat(res, chat_request(), context(clock))
    assert [a.outcome for a in result.attempts] == [outcome, AttemptOutcome.SUCCESS]


@pytest.mark.parametrize(
    "failure",
    [UpstreamFailure.CONTEXT_LENGTH, UpstreamFailure.CONTENT_FILTER, UpstreamFailure.BAD_REQUEST],
)
async def test_caller_caused_failure_stops_and_is_raised_as_is(
    make_router: MakeRouter, clock: FakeClock, failure: UpstreamFailure
) -> None:
    providers, routes = chain("a", "b")
    error = fail(failure)
    a, b = FakeProvider("a", [error]), FakeProvider("b")
    router = make_router(snapshot(providers, routes), {"a": a, "b": b})
    res = router.resolve(model="chat", task=None, privacy=None, principal=ANONYMOUS)
    with pytest.raises(UpstreamError) as info:
        await router.chat(res, chat_request(), context(clock))
    assert info.value is error
    assert b.upstream_calls() == 0
    # It says nothing against the target: no failure counted.
    assert router.health_view().targets[0].consecutive_failures == 0


async def test_all_targets_fail_no_target_left_with_attempts(
    make_router: MakeRouter, clock: FakeClock
) -> None:
    providers, routes = chain("a", "b")
    a = FakeProvider("a", default=fail(UpstreamFailure.SERVER_ERROR))
    b = FakeProvider("b", default=fail(UpstreamFailure.RATE_LIMITED, retry_after_s=7.0))
    router = make_router(snapshot(providers, routes), {"a": a, "b": b})
    res = router.resolve(model="chat", task=None, privacy=None, principal=ANONYMOUS)
    with pytest.raises(NoTargetLeft) as info:
        await router.chat(res, chat_request(), context(clock))
    err = info.value
    assert [a.provider for a in err.attempts] == ["a", "b"]
    assert err.reason == "ALL_TARGETS_FAILED"
    assert err.retry_after_s == 7.0
    assert "a/m-a: upstream_error" in err.message


async def test_retry_same_target_with_backoff(make_router: MakeRouter, clock: FakeClock) -> None:
    retry = {"max_attempts": 3, "base_delay_s": 0.001, "max_delay_s": 0.01}
    providers, routes = chain("a", "b", retry=retry)
    a = FakeProvider("a", [fail(UpstreamFailure.CONNECT), fail(UpstreamFailure.SERVER_ERROR)])
    b = FakeProvider("b")
    router = make_router(snapshot(providers, routes), {"a": a, "b": b})
    res = router.resolve(model="chat", task=None, privacy=None, principal=ANONYMOUS)
    result = await router.chat(res, chat_request(), context(clock))
    assert result.provider == "a"
    assert result.attempts[0].retries == 2
    assert a.upstream_calls() == 3
    assert b.upstream_calls() == 0


async def test_retry_after_honoured_or_moved_on(make_router: MakeRouter, clock: FakeClock) -> None:
    retry = {"max_attempts": 2, "base_delay_s": 0.0, "max_delay_s": 0.05}
    providers, routes = chain("a", "b", retry=retry)
    # A short Retry-After is waited for, then the same target answers.
    a = FakeProvider("a", [fail(UpstreamFailure.RATE_LIMITED, retry_after_s=0.02)])
    router = make_router(snapshot(providers, routes), {"a": a, "b": FakeProvider("b")})
    res = router.resolve(model="chat", task=None, privacy=None, principal=ANONYMOUS)
    loop = asyncio.get_running_loop()
    started = loop.time()
    result = await router.chat(res, chat_request(), context(clock))
    assert result.provider == "a"
    assert loop.time() - started >= 0.02
    # A Retry-After beyond max_delay_s moves on at once.
    a2 = FakeProvider("a", [fail(UpstreamFailure.RATE_LIMITED, retry_after_s=30.0)])
    router2 = make_router(snapshot(providers, routes), {"a": a2, "b": FakeProvider("b")})
    res2 = router2.resolve(model="chat", task=None, privacy=None, principal=ANONYMOUS)
    result2 = await router2.chat(res2, chat_request(), context(clock))
    assert result2.provider == "b"
    assert a2.upstream_calls() == 1


async def test_no_retry_that_cannot_finish_before_the_deadline(
    make_router: MakeRouter, clock: FakeClock
) -> None:
    retry = {"max_attempts": 5, "base_delay_s": 0.0, "max_delay_s": 0.0}
    providers, routes = chain("a", retry=retry, breaker={"failure_threshold": 100})
    a = FakeProvider("a", default=fail(UpstreamFailure.CONNECT))
    router = make_router(snapshot(providers, routes), {"a": a})
    res = router.resolve(model="chat", task=None, privacy=None, principal=ANONYMOUS)
    # 30 ms left is less than the retry floor (50 ms): one try only.
    with pytest.raises(NoTargetLeft):
        await router.chat(res, chat_request(), context(clock, deadline_s=0.03))
    assert a.upstream_calls() == 1
    # With time to spare, every try is used.
    with pytest.raises(NoTargetLeft):
        await router.chat(res, chat_request(), context(clock, deadline_s=5))
    assert a.upstream_calls() == 6


async def test_attempt_timeout_is_the_providers(make_router: MakeRouter) -> None:
    providers, routes = chain("a", "b", timeout_s=0.05)
    a = FakeProvider("a", default=HANG)
    router = make_router(
        snapshot(providers, routes), {"a": a, "b": FakeProvider("b")}, clock=time.monotonic
    )
    res = router.resolve(model="chat", task=None, privacy=None, principal=ANONYMOUS)
    result = await router.chat(res, chat_request(), context(time.monotonic, deadline_s=5))
    assert [a.outcome for a in result.attempts] == [AttemptOutcome.TIMEOUT, AttemptOutcome.SUCCESS]


async def test_deadline_passes_during_a_hang(make_router: MakeRouter) -> None:
    providers, routes = chain("a", "b")
    a = FakeProvider("a", default=HANG)
    b = FakeProvider("b")
    router = make_router(snapshot(providers, routes), {"a": a, "b": b}, clock=time.monotonic)
    res = router.resolve(model="chat", task=None, privacy=None, principal=ANONYMOUS)
    with pytest.raises(DeadlineExceeded, match="after 1 attempt"):
        await router.chat(res, chat_request(), context(time.monotonic, deadline_s=0.1))
    assert b.upstream_calls() == 0


async def test_deadline_already_passed(make_router: MakeRouter, clock: FakeClock) -> None:
    providers, routes = chain("a")
    a = FakeProvider("a")
    router = make_router(snapshot(providers, routes), {"a": a})
    res = router.resolve(model="chat", task=None, privacy=None, principal=ANONYMOUS)
    with pytest.raises(DeadlineExceeded):
        await router.chat(res, chat_request(), context(clock, deadline_s=0))
    assert a.upstream_calls() == 0


async def test_embed_fallback_and_checks(make_router: MakeRouter, clock: FakeClock) -> None:
    providers, routes = chain("a", "b")
    a, b = FakeProvider("a", [EMPTY]), FakeProvider("b")
    router = make_router(snapshot(providers, routes), {"a": a, "b": b})
    res = router.resolve(model="", task=Task.EMBEDDING, privacy=None, principal=ANONYMOUS)
    result = await router.embed(res, EmbedRequest(inputs=("x", "y")), context(clock))
    assert result.provider == "b"
    assert len(result.answer.vectors) == 2
    assert result.attempts[0].outcome is AttemptOutcome.UPSTREAM_ERROR  # 0 vectors for 2 inputs
    # A chat on an embedding route (and the reverse) is refused before any call.
    with pytest.raises(RequestInvalid) as info:
        await router.chat(res, chat_request(), context(clock))
    assert info.value.reason == "TASK_MISMATCH"
    chat_res = router.resolve(model="chat", task=None, privacy=None, principal=ANONYMOUS)
    with pytest.raises(RequestInvalid):
        await router.embed(chat_res, EmbedRequest(inputs=("x",)), context(clock))


async def test_cancelled_call_counts_nothing(make_router: MakeRouter, clock: FakeClock) -> None:
    providers, routes = chain("a")
    a = FakeProvider("a")
    a.gate = asyncio.Event()
    router = make_router(snapshot(providers, routes), {"a": a})
    res = router.resolve(model="chat", task=None, privacy=Privacy.STRICT, principal=ANONYMOUS)
    task = asyncio.create_task(router.chat(res, chat_request(), context(clock)))
    while a.entered == 0:
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    health = router.health_view().targets[0]
    assert health.in_flight == 0
    assert health.consecutive_failures == 0
    assert health.window_calls == 0
    assert router.health_view().providers[0].in_flight == 0


async def test_every_attempt_reaches_the_call_record_cancellation_included(
    make_router: MakeRouter, clock: FakeClock
) -> None:
    providers, routes = chain("a", "b", "c")
    a = FakeProvider("a", default=fail(UpstreamFailure.SERVER_ERROR))
    b, c = FakeProvider("b"), FakeProvider("c")
    router = make_router(snapshot(providers, routes), {"a": a, "b": b, "c": c})
    res = router.resolve(model="chat", task=None, privacy=None, principal=ANONYMOUS)
    sink = RecordingSink()
    result = await router.chat(res, chat_request(), context(clock, attempts=sink))
    assert sink.ended == list(result.attempts)
    assert [r.outcome for r in sink.ended] == [
        AttemptOutcome.UPSTREAM_ERROR,
        AttemptOutcome.SUCCESS,
    ]
    assert sink.ended[1].usage is not None and sink.ended[1].usage.completion_tokens == 4

    b.gate = asyncio.Event()  # b holds the next call in flight; the caller goes away
    cancelled = RecordingSink()
    task = asyncio.create_task(router.chat(res, chat_request(), context(clock, attempts=cancelled)))
    while b.entered < 2:
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cancelled.balanced
    assert [(r.provider, r.outcome) for r in cancelled.ended] == [
        ("a", AttemptOutcome.UPSTREAM_ERROR),
        ("b", AttemptOutcome.CANCELLED),
    ]
    assert c.upstream_calls() == 0
    assert all(t.in_flight == 0 for t in router.health_view().targets)
