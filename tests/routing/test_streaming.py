"""Streams: fallback only before the first payload delta, cut marking, closing upstream."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from llm_gateway_server.core.errors import (
    NoTargetLeft,
    StreamInterrupted,
    UpstreamError,
    UpstreamFailure,
)
from llm_gateway_server.core.types import ANONYMOUS, AttemptOutcome, ChatDelta, FinishReason
from llm_gateway_server.routing.concurrency import ConcurrencyLimited
from llm_gateway_server.routing.results import StreamSummary
from tests.routing.conftest import MakeRouter
from tests.routing.fakes import (
    CUT,
    EMPTY,
    FakeClock,
    FakeProvider,
    RecordingObserver,
    chat_request,
    context,
    fail,
    local,
    snapshot,
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


async def collect(stream) -> tuple[list[ChatDelta], StreamSummary]:  # type: ignore[no-untyped-def]
    items = [item async for item in stream]
    assert isinstance(items[-1], StreamSummary)
    assert all(isinstance(i, ChatDelta) and i.has_payload for i in items[:-1])
    return items[:-1], items[-1]


@pytest.mark.parametrize("behaviour", [fail(UpstreamFailure.CONNECT), EMPTY])
async def test_falls_back_before_first_payload(
    make_router: MakeRouter, clock: FakeClock, behaviour: object
) -> None:
    a, b = FakeProvider("a", [behaviour]), FakeProvider("b")  # type: ignore[list-item]
    router, res, observer = setup(make_router, a, b)
    deltas, summary = await collect(router.stream(res, chat_request(), context(clock)))
    assert "".join(d.content for d in deltas) == "b m"
    assert summary.provider == "b"
    assert not summary.cut
    assert summary.error is None
    assert summary.finish_reason is FinishReason.STOP
    assert summary.usage is not None
    assert [x.provider for x in summary.attempts] == ["a", "b"]
    assert summary.attempts[1].outcome is AttemptOutcome.SUCCESS
    assert a.open_streams == b.open_streams == 0
    assert observer.scopes[-1].first_chunks == 1


async def test_failure_after_first_payload_cuts_the_stream(
    make_router: MakeRouter, clock: FakeClock
) -> None:
    a, b = FakeProvider("a", [CUT]), FakeProvider("b")
    router, res, observer = setup(make_router, a, b)
    deltas, summary = await collect(router.stream(res, chat_request(), context(clock)))
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


async def test_closing_the_iterator_closes_upstream_at_once(
    make_router: MakeRouter, clock: FakeClock
) -> None:
    a, b = FakeProvider("a"), FakeProvider("b")
    router, res, observer = setup(make_router, a, b, max_in_flight=1)
    stream = router.stream(res, chat_request(), context(clock))
    first = await anext(stream)
    assert isinstance(first, ChatDelta)
    assert a.open_streams == 1
    assert router.health_view().providers[0].in_flight == 1
    await stream.aclose()
    assert a.open_streams == 0
    assert b.upstream_calls() == 0
    assert observer.attempts[-1][1] is AttemptOutcome.CANCELLED
    view = router.health_view()
    assert view.providers[0].in_flight == 0
    assert view.targets[0].in_flight == 0
    assert view.targets[0].consecutive_failures == 0
    # The slot was given back: the next call is admitted at once.
    _, summary = await collect(router.stream(res, chat_request(), context(clock)))
    assert summary.provider == "a"


async def test_cancelling_the_consumer_closes_upstream(
    make_router: MakeRouter, clock: FakeClock
) -> None:
    a, b = FakeProvider("a"), FakeProvider("b")
    a.gate = asyncio.Event()
    router, res, _ = setup(make_router, a, b)

    async def consume() -> None:
        async with contextlib.aclosing(router.stream(res, chat_request(), context(clock))) as s:
            async for _ in s:
                pass

    task = asyncio.create_task(consume())
    while a.entered == 0:
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert a.open_streams == 0
    assert b.upstream_calls() == 0
    assert router.health_view().targets[0].in_flight == 0


async def test_errors_before_any_delta_are_raised(
    make_router: MakeRouter, clock: FakeClock
) -> None:
    error = fail(UpstreamFailure.CONTENT_FILTER)
    a, b = FakeProvider("a", [error]), FakeProvider("b")
    router, res, _ = setup(make_router, a, b)
    with pytest.raises(UpstreamError) as info:
        await collect(router.stream(res, chat_request(), context(clock)))
    assert info.value is error
    assert b.upstream_calls() == 0

    a2 = FakeProvider("a", default=fail(UpstreamFailure.SERVER_ERROR))
    b2 = FakeProvider("b", default=EMPTY)
    router2, res2, _ = setup(make_router, a2, b2)
    with pytest.raises(NoTargetLeft) as info2:
        await collect(router2.stream(res2, chat_request(), context(clock)))
    assert [x.outcome for x in info2.value.attempts] == [
        AttemptOutcome.UPSTREAM_ERROR,
        AttemptOutcome.EMPTY_ANSWER,
    ]


async def test_stream_holds_its_slot_until_done(make_router: MakeRouter, clock: FakeClock) -> None:
    a, b = FakeProvider("a"), FakeProvider("b")
    providers = {"a": local(max_in_flight=1, max_queue=0)}
    routes = {"chat": {"targets": [{"provider": "a", "model": "m"}]}}
    router = make_router(snapshot(providers, routes), {"a": a})
    res = router.resolve(model="chat", task=None, privacy=None, principal=ANONYMOUS)
    first = router.stream(res, chat_request(), context(clock))
    await anext(first)
    with pytest.raises(ConcurrencyLimited) as info:
        await collect(router.stream(res, chat_request(), context(clock)))
    assert info.value.reason == "CONCURRENCY_LIMITED"
    assert [x.outcome for x in info.value.attempts] == [AttemptOutcome.CONCURRENCY_LIMITED]
    await first.aclose()
    assert b.upstream_calls() == 0
