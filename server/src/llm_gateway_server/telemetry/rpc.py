"""Per-RPC telemetry: the server span, the request id, server metrics and the RPC log line."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections.abc import Sequence
from types import TracebackType
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from llm_gateway_server.config.defaults import GATEWAY_SERVICE_NAME
from llm_gateway_server.core.redaction import redact
from llm_gateway_server.core.types import ChatAnswer, FinishReason, Message, Privacy, Usage
from llm_gateway_server.telemetry import content
from llm_gateway_server.telemetry import semconv as sc
from llm_gateway_server.telemetry.context import (
    RequestContext,
    enter_request,
    leave_request,
    request_id_from,
)
from llm_gateway_server.telemetry.metrics import GatewayMetrics
from llm_gateway_server.telemetry.tracing import (
    Activation,
    ContextExtractor,
    remote_span_context,
)

#: The logger of the one line per RPC.
RPC_LOGGER = logging.getLogger("llm_gateway.rpc")

_OPERATIONS = {"Chat": "chat", "StreamChat": "chat", "Embed": "embeddings"}
# gRPC server span conventions: only these codes make a server span an error.
_SERVER_ERRORS = frozenset(
    {"UNKNOWN", "DEADLINE_EXCEEDED", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS"}
)
_ERROR_LOG = frozenset({"UNKNOWN", "INTERNAL", "DATA_LOSS"})


class RpcTelemetry:
    """Opens an :class:`RpcScope` per RPC."""

    def __init__(
        self,
        metrics: GatewayMetrics,
        tracer: trace.Tracer | None,
        *,
        record_content: bool,
        extractor: ContextExtractor | None = None,
        service: str = GATEWAY_SERVICE_NAME,
    ) -> None:
        """Args: the metrics, a tracer (``None``: no spans), whether prompt and answer text
        may be recorded, the trace-context reader and the gRPC service name for spans."""
        self.metrics = metrics
        self.tracer = tracer
        self.record_content = record_content
        self._extractor = extractor if extractor is not None else ContextExtractor()
        self._service = service

    def start(self, method: str, metadata: Sequence[tuple[str, str | bytes]]) -> RpcScope:
        """Begin an RPC: continue the caller's trace, take or make its request id.

        Args:
            method: The RPC's method name (``Chat``; a full ``/pkg.Service/Chat`` works too).
            metadata: The call's invocation metadata.
        """
        method = method.rpartition("/")[2]
        request_id = request_id_from(metadata)
        parent = self._extractor.extract(metadata)
        scope = RpcScope(self, method, request_id)
        trace_id = ""
        ctx: Context | None = None
        if self.tracer is not None:
            attributes: dict[str, AttributeValue] = {
                sc.RPC_SYSTEM: "grpc",
                sc.RPC_SERVICE: self._service,
                sc.RPC_METHOD: method,
                sc.GW_REQUEST_ID: request_id,
            }
            if scope.operation:
                attributes[sc.OPERATION_NAME] = scope.operation
            span = self.tracer.start_span(
                f"{self._service}/{method}",
                context=parent,
                kind=SpanKind.SERVER,
                attributes=attributes,
            )
            ctx = trace.set_span_in_context(span, parent)
            trace_id = format(span.get_span_context().trace_id, "032x")
            # A span the sampler dropped still propagates; only a recorded one gets attributes.
            if span.is_recording():
                scope.span = span
        elif parent is not None:
            # Not tracing, but the caller is: keep its context current so the upstream call
            # carries its trace id on.
            remote = remote_span_context(parent)
            if remote is not None:
                ctx = parent
                trace_id = format(remote.trace_id, "032x")
        if ctx is not None:
            scope.activation = Activation(ctx)
        scope.trace_id = trace_id
        scope.request = RequestContext(request_id, trace_id)
        scope.request_token = enter_request(scope.request)
        return scope


class RpcScope:
    """One RPC's telemetry; call :meth:`end` exactly once (or use it as a context manager)."""

    __slots__ = (
        "_answer",
        "_cache_hit",
        "_cached",
        "_cost",
        "_ended",
        "_first_token",
        "_start",
        "_telemetry",
        "activation",
        "attempts",
        "fallbacks",
        "finish_reason",
        "method",
        "model",
        "operation",
        "provider",
        "request",
        "request_id",
        "request_token",
        "route",
        "span",
        "trace_id",
        "usage",
    )

    def __init__(self, telemetry: RpcTelemetry, method: str, request_id: str) -> None:
        self._telemetry = telemetry
        self._start = time.perf_counter()
        self.method = method
        self.operation = _OPERATIONS.get(method, "")
        self.request_id = request_id
        self.trace_id = ""
        self.span: trace.Span | None = None
        self.activation: Activation | None = None
        self.request: RequestContext | None = None
        self.request_token: contextvars.Token[RequestContext | None] | None = None
        self.route = ""
        self.provider = ""
        self.model = ""
        self.usage: Usage | None = None
        self.finish_reason: str | None = None
        self.attempts = 0
        self.fallbacks = 0
        self._cached = False
        self._cache_hit: bool | None = None
        self._cost: float | None = None
        self._answer: ChatAnswer | None = None
        self._first_token: float | None = None
        self._ended = False

    @property
    def records_content(self) -> bool:
        """Whether prompt and answer text are recorded (pass them to set_request/set_result)."""
        return self._telemetry.record_content and self.span is not None

    def __enter__(self) -> RpcScope:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._ended:
            return
        if exc is None:
            self.end("OK")
        elif isinstance(exc, asyncio.CancelledError):
            self.end("CANCELLED")
        else:
            self.end("INTERNAL", error_reason="INTERNAL")

    def set_request(
        self,
        *,
        route: str,
        privacy: Privacy | str,
        model_requested: str,
        temperature: float | None = None,
        max_tokens: int | None = None,
        top_p: float | None = None,
        streaming: bool = False,
        messages: Sequence[Message] = (),
        inputs: Sequence[str] = (),
    ) -> None:
        """What the caller asked for, once the route is resolved.

        ``messages`` (chat) or ``inputs`` (embeddings) are only looked at when content
        recording is on.
        """
        self.route = route
        span = self.span
        if span is None:
            return
        attributes: dict[str, AttributeValue] = {
            sc.GW_ROUTE: route,
            sc.GW_PRIVACY: privacy.name.lower() if isinstance(privacy, Privacy) else privacy,
            sc.REQUEST_MODEL: model_requested,
        }
        if temperature is not None:
            attributes[sc.REQUEST_TEMPERATURE] = temperature
        if max_tokens is not None:
            attributes[sc.REQUEST_MAX_TOKENS] = max_tokens
        if top_p is not None:
            attributes[sc.REQUEST_TOP_P] = top_p
        if streaming:
            attributes[sc.REQUEST_STREAM] = True
        if self._telemetry.record_content and (messages or inputs):
            text = (
                content.input_messages(messages) if messages else content.embedding_inputs(inputs)
            )
            attributes[sc.INPUT_MESSAGES] = text
            if self.request is not None:
                self.request.input_messages = text
        span.set_attributes(attributes)

    def set_cache(self, hit: bool) -> None:
        """The response cache was consulted."""
        self._telemetry.metrics.cache_lookup(hit)
        self._cache_hit = hit

    def first_token(self) -> None:
        """The first streamed delta is leaving the gateway (only the first call counts)."""
        if self._first_token is None:
            self._first_token = time.perf_counter()

    def set_result(
        self,
        *,
        provider: str,
        model: str,
        usage: Usage | None,
        cost_usd: float | None,
        finish_reason: FinishReason | str | None,
        attempts: int,
        fallbacks: int,
        cached: bool,
        answer: ChatAnswer | None = None,
    ) -> None:
        """Who answered and what it cost; ``answer`` is recorded only with content recording."""
        self.provider = provider
        self.model = model
        self.usage = usage
        self._cost = cost_usd
        self.attempts = attempts
        self.fallbacks = fallbacks
        self._cached = cached
        self._answer = answer
        # FinishReason is a StrEnum: str() gives its wire name; plain strings pass as they are.
        self.finish_reason = str(finish_reason) if finish_reason is not None else None

    def end(self, status: str, *, error_reason: str = "", error_message: str = "") -> None:
        """Finish the RPC: metrics, span, the log line; later calls are ignored.

        Args:
            status: The gRPC status code name (``OK``, ``UNAVAILABLE``, ...).
            error_reason: The ErrorInfo reason, if the call failed.
            error_message: The error's message (redacted before it is logged or traced).
        """
        if self._ended:
            return
        self._ended = True
        duration = time.perf_counter() - self._start
        telemetry = self._telemetry
        metrics = telemetry.metrics
        metrics.record_rpc(
            method=self.method,
            route=self.route,
            provider=self.provider,
            model=self.model,
            status=status,
            duration_s=duration,
        )
        usage = self.usage
        if usage is not None and not self._cached:
            metrics.record_spend(
                route=self.route,
                provider=self.provider,
                model=self.model,
                usage=(usage.prompt_tokens, usage.completion_tokens),
                cost_usd=self._cost or 0.0,
            )
        if self._first_token is not None and status == "OK":
            metrics.record_time_to_first_token(
                operation=self.operation,
                provider=self.provider,
                model=self.model,
                route=self.route,
                seconds=self._first_token - self._start,
            )
        if error_reason:
            rejection = sc.REJECTION_REASONS.get(error_reason)
            if rejection is not None:
                metrics.rejection(rejection)
        if error_message:
            error_message = redact(error_message)
        if self.span is not None:
            self._end_span(status, error_reason, error_message)
        self._log(status, duration, error_reason, error_message)
        if self.activation is not None:
            self.activation.undo()
        if self.request_token is not None:
            leave_request(self.request_token)

    def _end_span(self, status: str, error_reason: str, error_message: str) -> None:
        span = self.span
        assert span is not None
        attributes: dict[str, AttributeValue] = {
            sc.RPC_GRPC_STATUS_CODE: sc.GRPC_STATUS_CODES.get(status, 2),
        }
        if self.provider:
            attributes[sc.PROVIDER_NAME] = self.provider
        if self.model:
            attributes[sc.RESPONSE_MODEL] = self.model
        if self.usage is not None:
            attributes[sc.USAGE_INPUT_TOKENS] = self.usage.prompt_tokens
            if self.operation != "embeddings":
                attributes[sc.USAGE_OUTPUT_TOKENS] = self.usage.completion_tokens
        if self.finish_reason is not None:
            attributes[sc.RESPONSE_FINISH_REASONS] = (self.finish_reason,)
        if self.attempts:
            attributes[sc.GW_ATTEMPTS] = self.attempts
            attributes[sc.GW_FALLBACKS] = self.fallbacks
        if self._cache_hit is not None or self._cached:
            attributes[sc.GW_CACHE_HIT] = bool(self._cache_hit or self._cached)
        if self._cost:
            attributes[sc.GW_COST_USD] = self._cost
        if self._answer is not None and self._telemetry.record_content:
            attributes[sc.OUTPUT_MESSAGES] = content.output_messages(self._answer)
        if status != "OK":
            attributes[sc.ERROR_TYPE] = error_reason or status
            if error_reason:
                attributes[sc.GW_ERROR_REASON] = error_reason
            if status in _SERVER_ERRORS:
                span.set_status(Status(StatusCode.ERROR, error_message or status))
        span.set_attributes(attributes)
        span.end()

    def _log(self, status: str, duration: float, error_reason: str, error_message: str) -> None:
        if status == "OK" or status == "CANCELLED":
            level = logging.INFO
        elif status in _ERROR_LOG:
            level = logging.ERROR
        else:
            level = logging.WARNING
        if not RPC_LOGGER.isEnabledFor(level):
            return
        usage = self.usage
        fields: dict[str, Any] = {
            "request_id": self.request_id,
            "trace_id": self.trace_id,
            "method": self.method,
            "route": self.route,
            "provider": self.provider,
            "model": self.model,
            "status": status,
            "latency_ms": round(duration * 1000.0, 3),
            "tokens_in": usage.prompt_tokens if usage is not None else 0,
            "tokens_out": usage.completion_tokens if usage is not None else 0,
            "cached": self._cached,
            "attempts": self.attempts,
            "fallbacks": self.fallbacks,
            "error_reason": error_reason,
        }
        if error_message:
            fields["error"] = error_message
        # makeRecord + handle skips Logger.log's stack walk for the caller's file and line,
        # which nobody reads on this line.
        record = RPC_LOGGER.makeRecord(
            RPC_LOGGER.name, level, "", 0, "rpc", (), None, extra={"fields": fields}
        )
        RPC_LOGGER.handle(record)
