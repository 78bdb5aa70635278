"""A stream as the gateway hands it to transports: deltas, then how it ended (never in-band).

Whatever way the stream ends (finished, cut upstream, closed by the caller, cut at shutdown),
the call record learns what it delivered: its target, finish reason and usage, counted from
the delivered text when the upstream reported none.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator
from dataclasses import dataclass

from llm_gateway_server.core.assembly import AnswerBuilder
from llm_gateway_server.core.calls import CallRecord, settle_now
from llm_gateway_server.core.errors import DeadlineExceeded, GatewayError
from llm_gateway_server.core.status import past_deadline
from llm_gateway_server.core.types import (
    AttemptRecord,
    ChatAnswer,
    ChatDelta,
    ChatRequest,
    FinishReason,
    ToolCallDelta,
    Usage,
)
from llm_gateway_server.delivered import Delivered, counted_usage, reported
from llm_gateway_server.routing.results import RoutedStream
from llm_gateway_server.state.tokens import ready_tokenizer


@dataclass(frozen=True, slots=True)
class StreamEnd:
    """How a stream ended, for its summary message; ``error`` when it was cut."""

    finish_reason: FinishReason
    usage: Usage
    route: str
    provider: str
    model: str
    attempts: tuple[AttemptRecord, ...]
    cached: bool = False
    cost_usd: float | None = None
    cut: bool = False
    error: GatewayError | None = None


class GatewayStream:
    """The deltas of one stream; ``end`` is filled once they ended (never in-band)."""

    def __init__(
        self,
        record: CallRecord,
        request: ChatRequest,
        routed: RoutedStream | None,
        replay: ChatAnswer | None,
        *,
        collect: bool,
    ) -> None:
        self._record = record
        self._request = request
        self._routed = routed
        self._replay = replay
        self._collector = AnswerBuilder() if collect else None
        self._delivered = Delivered()
        self.end: StreamEnd | None = None

    async def deltas(self) -> AsyncGenerator[ChatDelta, None]:
        """Every delta; close it (``aclose``) to cancel: the upstream is closed at once."""
        record = self._record
        if self._replay is not None:
            yield _replay(self._replay)
            await settle_now(record)
            self.end = self._end(None)
            return
        routed = self._routed
        assert routed is not None
        delivered, collector = self._delivered, self._collector
        try:
            async with contextlib.aclosing(aiter(routed)) as deltas:  # type: ignore[type-var]
                async for delta in deltas:
                    delivered.add(delta)
                    if collector is not None:
                        collector.add(delta)
                    yield delta
        finally:
            # Whatever way the stream ended, the record learns what it delivered.
            await routed.aclose()
            if routed.summary is None or not reported(routed.summary.usage):
                await ready_tokenizer()  # the count below needs it (loaded once, lazily)
            self._account(routed)
        summary = routed.summary
        error = summary.error if summary is not None else None
        if error is not None and past_deadline(record.deadline):
            # The upstream was cut by the caller's own deadline, not by a failure.
            error = DeadlineExceeded(
                f"the deadline passed during the stream on {record.route!r}",
                metadata={"route": record.route},
            )
            record.error_reason = error.reason
        await settle_now(record)
        self.end = self._end(error)

    def interrupted(self, error: GatewayError) -> StreamEnd:
        """The summary of a stream the server cut (shutdown): marked cut, with ``error``."""
        self._record.cut = True
        return self._end(error)

    def _account(self, routed: RoutedStream) -> None:
        record = self._record
        summary = routed.summary
        provider = (summary.provider if summary else "") or routed.provider
        model = (summary.model if summary else "") or routed.model
        # A stream closed early may not know its target: the record's attempts do.
        record.provider, record.model = (provider, model) if provider else record.target()
        finish = summary.finish_reason if summary is not None else FinishReason.ERROR
        record.finish_reason = str(finish)
        record.cut = summary is None or summary.cut
        usage = summary.usage if summary is not None else None
        if not reported(usage):
            usage = counted_usage(self._request, self._delivered.completion_tokens())
            record.usage_counted = True
        record.usage = usage
        if self._collector is not None and not record.cut and usage is not None:
            record.answer = self._collector.answer(finish, usage, record.model)

    def _end(self, error: GatewayError | None) -> StreamEnd:
        record = self._record
        finish = FinishReason(record.finish_reason) if record.finish_reason else FinishReason.ERROR
        return StreamEnd(
            FinishReason.ERROR if record.cut else finish,
            record.usage or Usage(),
            record.route,
            record.provider,
            record.model,
            tuple(record.attempts),
            cached=record.cached,
            cost_usd=record.cost_usd,
            cut=record.cut,
            error=error,
        )


def _replay(answer: ChatAnswer) -> ChatDelta:
    return ChatDelta(
        content=answer.content,
        reasoning_content=answer.reasoning_content,
        tool_calls=tuple(
            ToolCallDelta(i, c.id, c.name, c.arguments) for i, c in enumerate(answer.tool_calls)
        ),
    )
