"""Streams: fallback only before the first payload delta, cut marking, closing upstream."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from llm_gateway_server.core.errors import (
    DeadlineExceeded,
    NoTargetLeft,
    StreamInterrupted,
    UpstreamError,
    UpstreamFailure,
)
from llm_gateway_server.core.types import (
    ANONYMOUS,
    AttemptOutcome,
    ChatDelta,
    FinishReason,
    ProviderChatRequest,
)
from llm_gateway_server.routing.concurrency import ConcurrencyLimited
from tests.routing.conftest import MakeRouter
from tests.routing.fakes import (
    CUT,
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
    stream_all,
)


def setup(make_router: MakeRouter, a: FakeProvider, b: FakeProvider, **cfg: object):  # type: ignore[no-untyped-def]
    providers = {"a": local(**cfg), "b": local(**cfg)}
    routes = {
        "chat": {"targets": [{"provider": "a", "model": "m"}, {"provider": "b", "model": "m"}]}
    }
    observer = RecordingObserver()
    router = make_router(snapshot(providers, routes), {"a": a, "b": b}, observer=observer)
    res = router.resolve(model="chat", task=None, privacy=None, principal=ANONYMOUS)
    return router, res, observer


@pytest.mark.parametrize("behaviour", [fail(UpstreamFailure.CONNECT), EMPTY])
async def test_falls_back_before_first_payload(
    make_router: MakeRouter, clock: FakeClock, behaviour: object
) -> None:
    a, b = FakeProvider("a", [behaviour]), FakeProvider("b")  # type: ignore[list-item]
    router, res, observer = setup(make_router, a, b)
    sink = RecordingSink()
    deltas, summary = await stream_all(router, res, chat_request(), context(clock, attempts=sink))
    assert "".join(d.content for d in deltas) == "b m"
    assert summary.provider == "b"
    assert not summary.cut
    assert summary.error is None
    assert summary.finish_reason is FinishReason.STOP
    assert summary.usage is not None
    assert [x.provider for x in summary.attempts] == ["a", "b"]
    assert summary.attempts[1].outcome is AttemptOutcome.SUCCESS
    assert summary.attempts[1].usage == summary.usage
    assert sink.ended == list(summary.attempts)
    assert a.open_streams == b.open_streams == 0
    assert observer.scopes[-1].first_chunks == 1


async def test_a_late_first_token_moves_on_before_anything_was_sent(
    make_router: MakeRouter, clock: FakeClock
) -> None:
    a, b = FakeProvider("a", [HANG]), FakeProvider("b")
    router, res, _ = setup(make_router, a, b, first_token_timeout_s=0.05)
    deltas, summary = await stream_all(router, res, chat_request(), context(clock))
    assert "".join(d.content for d in deltas) == "b m"
    first = summary.attempts[0]
    assert (first.provider, first.outcome) == ("a", AttemptOutcome.TIMEOUT)
    assert "no first token within 0.05 s" in first.error
    health = next(t for t in router.health_view().targets if t.provider == "a")
    assert "no first token" in health.last_error
    assert a.open_streams == 0


async def test_failure_after_first_payload_cuts_the_stream(
    make_router: MakeRouter, clock: FakeClock
) -> None:
    a, b = FakeProvider("a", [CUT]), FakeProvider("b")
    router, res, observer = setup(make_router, a, b)
    deltas, summary = await stream_all(router, res, chat_request(), context(clock))
    assert [d.content for d in deltas] == ["a "]
    assert summary.cut
    assert summary.finish_reason is FinishReason.ERROR
    assert isinstance(summary.error, StreamInterrupted)
    assert summary.error.reason == "STREAM_INTERRUPTED"
    assert [x.outcome for x in summary.attempts] == [AttemptOutcome.STREAM_CUT]
    assert b.upstream_calls() == 0
    health = next(t for t in router.health_view().targets if t.provider == "a")
    assert health.consecutive_failures == 1
    assert observer.attempts[-1][1] is AttemptOutcome.UPSTREAM_ERROR
    assert a.open_streams == 0


class _TimesOutAfterText(FakeProvider):
    """Sends one delta, then (once released) times out, as an adapter at the deadline does."""

    def __init__(self) -> None:
        super().__init__("a")
        self.release = asyncio.Event()

    async def stream(  # type: ignore[override]
        self, request: ProviderChatRequest, *, timeout_s: float
    ) -> AsyncIterator[ChatDelta]:
        yield ChatDelta(content="partial ")
        await self.release.wait()
        raise fail(UpstreamFailure.TIMEOUT)


async def test_a_stream_cut_by_the_callers_deadline_is_a_deadline(
    make_router: MakeRouter, clock: FakeClock
) -> None:
    a, b = _TimesOutAfterText(), FakeProvider("b")
    router, res, _ = setup(make_router, a, b)
    stream = await router.open_stream(res, chat_request(), context(clock, deadline_s=1.0))
    assert (await anext(stream)).content == "partial "
    clock.advance(1.0)
    a.release.set()
    assert [d async for d in stream] == []
    summary = stream.summary
    assert summary is not None and summary.cut
    assert isinstance(summary.error, DeadlineExceeded)  # DEADLINE_EXCEEDED, not UNAVAILABLE
    assert [x.outcome for x in summary.attempts] == [AttemptOutcome.STREAM_CUT]
    # The deadline is the caller's: the upstream is not blamed for it.
    health = next(t for t in router.health_view().targets if t.provider == "a")
    assert health.consecutive_failures == 0
    await stream.aclose()


async def test_closing_the_stream_closes_upstream_at_once(
    make_router: MakeRouter, clock: FakeClock
) -> None:
    a, b = FakeProvider("a"), FakeProvider("b")
    router, res, observer = setup(make_router, a, b, max_in_flight=1)
    sink = RecordingSink()
    stream = await router.open_stream(res, chat_request(), context(clock, attempts=sink))
    first = await anext(stream)
    assert first.content == "a "
    assert a.open_streams == 1
    assert router.health_view().providers[0].in_flight == 1
    assert stream.summary is None
    await stream.aclose()
    await stream.aclose()  # idempotent
    assert a.open_streams == 0
    assert b.upstream_calls() == 0
    assert observer.attempts[-1][1] is AttemptOutcome.CANCELLED
    assert stream.summary is not None and stream.summary.cut
    assert [r.outcome for r in sink.ended] == [AttemptOutcome.CANCELLED]
    view = router.health_view()
    assert view.providers[0].in_flight == 0
    assert view.targets[0].in_flight == 0
    assert view.targets[0].consecutive_failures == 0
    # The slot was given back: the next call is admitted at once.
    _, summary = await stream_all(router, res, chat_request(), context(clock))
    assert summary.provider == "a"


async def test_cancelling_the_caller_closes_upstream_and_ends_the_attempt(
    make_router: MakeRouter, clock: FakeClock
) -> None:
    a, b = FakeProvider("a"), FakeProvider("b")
    a.gate = asyncio.Event()
    router, res, _ = setup(make_router, a, b)
    sink = RecordingSink()

    async def consume() -> None:
        await stream_all(router, res, chat_request(), context(clock, attempts=sink))

    task = asyncio.create_task(consume())
    while a.entered == 0:
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert a.open_streams == 0
    assert b.upstream_calls() == 0
    assert router.health_view().targets[0].in_flight == 0
    assert sink.balanced
    assert [(r.provider, r.outcome) for r in sink.ended] == [("a", AttemptOutcome.CANCELLED)]


async def test_errors_before_any_delta_are_raised(
    make_router: MakeRouter, clock: FakeClock
) -> None:
    error = fail(UpstreamFailure.CONTENT_FILTER)
    a, b = FakeProvider("a", [error]), FakeProvider("b")
    router, res, _ = setup(make_router, a, b)
    with pytest.raises(UpstreamError) as info:
        await router.open_stream(res, chat_request(), context(clock))
    assert info.value is error
    assert b.upstream_calls() == 0

    a2 = FakeProvider("a", default=fail(UpstreamFailure.SERVER_ERROR))
    b2 = FakeProvider("b", default=EMPTY)
    router2, res2, _ = setup(make_router, a2, b2)
    sink = RecordingSink()
    with pytest.raises(NoTargetLeft) as info2:
        await router2.open_stream(res2, chat_request(), context(clock, attempts=sink))
    assert [x.outcome for x in info2.value.attempts] == [
        AttemptOutcome.UPSTREAM_ERROR,
        AttemptOutcome.EMPTY_ANSWER,
    ]
    assert sink.ended == list(info2.value.attempts)
    assert a2.open_streams == b2.open_streams == 0


async def test_stream_holds_its_slot_until_done(make_router: MakeRouter, clock: FakeClock) -> None:
    a = FakeProvider("a")
    providers = {"a": local(max_in_flight=1, max_queue=0)}
    routes = {"chat": {"targets": [{"provider": "a", "model": "m"}]}}
    router = make_router(snapshot(providers, routes), {"a": a})
    res = router.resolve(model="chat", task=None, privacy=None, principal=ANONYMOUS)
    first = await router.open_stream(res, chat_request(), context(clock))
    with pytest.raises(ConcurrencyLimited) as info:
        await router.open_stream(res, chat_request(), context(clock))
    assert info.value.reason == "CONCURRENCY_LIMITED"
    assert [x.outcome for x in info.value.attempts] == [AttemptOutcome.CONCURRENCY_LIMITED]
    await first.aclose()
    assert a.open_streams == 0
