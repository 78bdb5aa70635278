"""Drive the real RpcTelemetry with a real CallRecord, the way the pipeline and gateway do."""

from __future__ import annotations

import time
from collections.abc import Sequence
from types import TracebackType

from llm_gateway_server.core.calls import CallRecord
from llm_gateway_server.core.types import (
    AttemptOutcome,
    AttemptRecord,
    ChatAnswer,
    ChatRequest,
    EmbedRequest,
    FinishReason,
    Message,
    Privacy,
    Sampling,
    Usage,
)
from llm_gateway_server.telemetry.context import RequestContext, request_id_from
from llm_gateway_server.telemetry.rpc import privacy_name
from llm_gateway_server.telemetry.setup import Telemetry


class Call:
    """One call's record, opened on ``telemetry.rpc`` and closed exactly once."""

    def __init__(
        self, telemetry: Telemetry, method: str, metadata: Sequence[tuple[str, str]]
    ) -> None:
        self._rpc = telemetry.rpc
        self.record = CallRecord(request_id_from(metadata), "grpc", method, time.monotonic() + 60)
        self._rpc.opened(self.record, metadata)

    @property
    def trace_id(self) -> str:
        return self.record.trace_id

    @property
    def request_id(self) -> str:
        return self.record.request_id

    @property
    def request(self) -> RequestContext | None:
        opened = self.record.telemetry
        return getattr(opened, "request", None)

    @property
    def records_content(self) -> bool:
        return self._rpc.records_content(self.record)

    def set_request(
        self,
        *,
        route: str,
        privacy: Privacy | str,
        model_requested: str,
        temperature: float | None = None,
        max_tokens: int | None = None,
        streaming: bool = False,
        messages: Sequence[Message] = (),
        inputs: Sequence[str] = (),
    ) -> None:
        record = self.record
        record.route, record.privacy = route, privacy_name(privacy)
        record.model_requested, record.streaming = model_requested, streaming
        if inputs:
            record.request = EmbedRequest(inputs=tuple(inputs))
        else:
            sampling = Sampling(temperature=temperature, max_tokens=max_tokens)
            record.request = ChatRequest(messages=tuple(messages), sampling=sampling)
            record.max_tokens = max_tokens
        self._rpc.admitted(record)

    def set_cache(self, hit: bool) -> None:
        self.record.cache_hit = hit

    def first_token(self) -> None:
        self.record.first_token()

    def set_result(
        self,
        *,
        provider: str,
        model: str,
        usage: Usage | None,
        cost_usd: float | None,
        finish_reason: FinishReason | str | None,
        attempts: int,
        cached: bool = False,
        answer: ChatAnswer | None = None,
        **_: object,
    ) -> None:
        record = self.record
        record.provider, record.model, record.usage = provider, model, usage
        record.cost_usd, record.answer = cost_usd, answer
        record.finish_reason = str(finish_reason) if finish_reason is not None else None
        if cached:
            record.cache_hit = True
        outcomes = [AttemptOutcome.UPSTREAM_ERROR] * (attempts - 1) + [AttemptOutcome.SUCCESS]
        for outcome in outcomes[:attempts]:
            record.attempt_ended(AttemptRecord(provider, model, outcome, 0.0))

    def end(self, status: str, *, error_reason: str = "", error_message: str = "") -> None:
        record = self.record
        if record.closed:
            return
        record.closed = True
        record.status, record.error_reason, record.error_message = (
            status,
            error_reason,
            error_message,
        )
        record.end_attempts()
        self._rpc.closed(record)

    def __enter__(self) -> Call:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.end(
            "OK" if exc is None else "INTERNAL", error_reason="" if exc is None else "INTERNAL"
        )


def start(telemetry: Telemetry, method: str, metadata: Sequence[tuple[str, str]]) -> Call:
    """Begin a call on ``telemetry`` (what ``CallPipeline.begin`` does for a transport)."""
    return Call(telemetry, method, metadata)
