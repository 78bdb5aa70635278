"""Per-call telemetry: opens the server span of a call record, consumes the closed record.

``opened`` continues the caller's trace and makes the request current for log lines;
``closed`` reads the closed record once: server metrics, span end and the one log line.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from llm_gateway_server.config.defaults import GATEWAY_SERVICE_NAME
from llm_gateway_server.core.calls import BoundedLabels, CallRecord
from llm_gateway_server.core.redaction import redact
from llm_gateway_server.core.types import ChatRequest, Privacy
from llm_gateway_server.telemetry import content
from llm_gateway_server.telemetry import semconv as sc
from llm_gateway_server.telemetry.context import RequestContext, enter_request, leave_request
from llm_gateway_server.telemetry.metrics import GatewayMetrics
from llm_gateway_server.telemetry.tracing import (
    Activation,
    ContextExtractor,
    remote_span_context,
)

#: The logger of the one line per RPC.
RPC_LOGGER = logging.getLogger("llm_gateway.rpc")

# gRPC server span conventions: only these codes make a server span an error.
_SERVER_ERRORS = frozenset(
    {"UNKNOWN", "DEADLINE_EXCEEDED", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS"}
)
_ERROR_LOG = frozenset({"UNKNOWN", "INTERNAL", "DATA_LOSS"})
_QUIET = frozenset({"OK", "CANCELLED"})
#: Default bound of distinct route and model label values.
_TARGET_LABELS = 200


@dataclass(slots=True)
class _Open:
    """The telemetry side of one open call."""

    span: trace.Span | None
    activation: Activation | None
    token: contextvars.Token[RequestContext | None]
    request: RequestContext


class RpcTelemetry:
    """Opens the span of each call record and consumes the record when it closes."""

    def __init__(
        self,
        metrics: GatewayMetrics,
        tracer: trace.Tracer | None,
        *,
        record_content: bool,
        extractor: ContextExtractor | None = None,
        service: str = GATEWAY_SERVICE_NAME,
        max_target_labels: int = _TARGET_LABELS,
    ) -> None:
        """Args: the metrics, a tracer (``None``: no spans), whether prompt and answer text
        may be recorded, the trace-context reader, the gRPC service name for spans and the
        bound of distinct route and model metric labels."""
        self.metrics = metrics
        self.tracer = tracer
        self.record_content = record_content
        self._extractor = extractor if extractor is not None else ContextExtractor()
        self._service = service
        # Direct ``provider/model`` targets are the caller's to name: bound their series.
        self._routes = BoundedLabels(max_target_labels)
        self._models = BoundedLabels(max_target_labels)

    def limit_target_labels(self, limit: int) -> None:
        """Bound distinct route and model label values (``server.max_target_labels``)."""
        self._routes = BoundedLabels(limit)
        self._models = BoundedLabels(limit)

    def records_content(self, record: CallRecord) -> bool:
        """Whether prompt and answer text of ``record`` are recorded (its span records)."""
        opened = record.telemetry
        return self.record_content and isinstance(opened, _Open) and opened.span is not None

    def opened(self, record: CallRecord, metadata: Sequence[tuple[str, str | bytes]]) -> None:
        """Begin a call: continue the caller's trace, make the request current."""
        parent = self._extractor.extract(metadata)
        trace_id = ""
        ctx: Context | None = None
        span: trace.Span | None = None
        if self.tracer is not None:
            attributes: dict[str, AttributeValue] = {
                sc.RPC_SYSTEM: record.transport,
                sc.RPC_SERVICE: self._service,
                sc.RPC_METHOD: record.method,
                sc.GW_REQUEST_ID: record.request_id,
            }
            if record.operation:
                attributes[sc.OPERATION_NAME] = record.operation
            started = self.tracer.start_span(
                f"{self._service}/{record.method}",
                context=parent,
                kind=SpanKind.SERVER,
                attributes=attributes,
            )
            ctx = trace.set_span_in_context(started, parent)
            trace_id = format(started.get_span_context().trace_id, "032x")
            # A span the sampler dropped still propagates; only a recorded one gets attributes.
            if started.is_recording():
                span = started
        elif parent is not None:
            # Not tracing, but the caller is: keep its context current so the upstream call
            # carries its trace id on.
            remote = remote_span_context(parent)
            if remote is not None:
                ctx = parent
                trace_id = format(remote.trace_id, "032x")
        record.trace_id = trace_id
        request = RequestContext(record.request_id, trace_id)
        activation = Activation(ctx) if ctx is not None else None
        record.telemetry = _Open(span, activation, enter_request(request), request)

    def admitted(self, record: CallRecord) -> None:
        """The route is resolved: what the caller asked for goes on the span now."""
        opened = record.telemetry
        if not isinstance(opened, _Open) or opened.span is None:
            return
        attributes = _request_attributes(record)
        if self.record_content and record.request is not None:
            request = record.request
            text = (
                content.input_messages(request.messages)
                if isinstance(request, ChatRequest)
                else content.embedding_inputs(request.inputs)
            )
            attributes[sc.INPUT_MESSAGES] = text
            opened.request.input_messages = text
        opened.span.set_attributes(attributes)

    def closed(self, record: CallRecord) -> None:
        """Consume a closed record: metrics, span, the log line; leave the request."""
        duration = record.duration_s()
        status = record.status
        metrics = self.metrics
        route = self._routes(record.route) if record.route else ""
        model = self._models(record.model) if record.model else ""
        metrics.record_rpc(
            method=record.method,
            route=route,
            provider=record.provider,
            model=model,
            status=status,
            duration_s=duration,
            caller=record.caller_label,
        )
        if record.cache_hit is not None:
            metrics.cache_lookup(record.cache_hit)
        usage = record.usage
        if usage is not None and not record.cached:
            metrics.record_spend(
                route=route,
                provider=record.provider,
                model=model,
                usage=(usage.prompt_tokens, usage.completion_tokens),
                cost_usd=record.cost_usd or 0.0,
                caller=record.caller_label,
            )
        if record.first_token_at is not None and status == "OK":
            metrics.record_time_to_first_token(
                operation=record.operation,
                provider=record.provider,
                model=model,
                route=route,
                seconds=record.first_token_at - record.started,
            )
        if record.error_reason:
            rejection = sc.REJECTION_REASONS.get(record.error_reason)
            if rejection is not None:
                metrics.rejection(rejection)
        message = redact(record.error_message) if record.error_message else ""
        opened = record.telemetry
        if isinstance(opened, _Open) and opened.span is not None:
            self._end_span(record, opened.span, message)
        _log(record, duration, message)
        if isinstance(opened, _Open):
            if opened.activation is not None:
                opened.activation.undo()
            leave_request(opened.token)

    def _end_span(self, record: CallRecord, span: trace.Span, error_message: str) -> None:
        status, error_reason = record.status, record.error_reason
        attributes: dict[str, AttributeValue] = {
            sc.RPC_GRPC_STATUS_CODE: sc.GRPC_STATUS_CODES.get(status, 2),
        }
        if record.provider:
            attributes[sc.PROVIDER_NAME] = record.provider
        if record.model:
            attributes[sc.RESPONSE_MODEL] = record.model
        if record.usage is not None:
            attributes[sc.USAGE_INPUT_TOKENS] = record.usage.prompt_tokens
            if record.operation != "embeddings":
                attributes[sc.USAGE_OUTPUT_TOKENS] = record.usage.completion_tokens
        if record.finish_reason is not None:
            attributes[sc.RESPONSE_FINISH_REASONS] = (record.finish_reason,)
        if record.attempts:
            attributes[sc.GW_ATTEMPTS] = len(record.attempts)
            attributes[sc.GW_FALLBACKS] = record.fallbacks
        if record.cut:
            attributes[sc.GW_CUT] = True
        if record.cache_hit is not None:
            attributes[sc.GW_CACHE_HIT] = record.cache_hit
        if record.cost_usd:
            attributes[sc.GW_COST_USD] = record.cost_usd
        if record.answer is not None and self.record_content:
            attributes[sc.OUTPUT_MESSAGES] = content.output_messages(record.answer)
        if status != "OK":
            attributes[sc.ERROR_TYPE] = error_reason or status
            if error_reason:
                attributes[sc.GW_ERROR_REASON] = error_reason
            if status in _SERVER_ERRORS:
                span.set_status(Status(StatusCode.ERROR, error_message or status))
        span.set_attributes(attributes)
        span.end()


def _request_attributes(record: CallRecord) -> dict[str, AttributeValue]:
    attributes: dict[str, AttributeValue] = {
        sc.GW_ROUTE: record.route,
        sc.GW_PRIVACY: record.privacy,
        sc.REQUEST_MODEL: record.model_requested,
        sc.GW_CALLER: record.caller,
    }
    request = record.request
    if isinstance(request, ChatRequest):
        sampling = request.sampling
        if sampling.temperature is not None:
            attributes[sc.REQUEST_TEMPERATURE] = sampling.temperature
        if record.max_tokens is not None:
            attributes[sc.REQUEST_MAX_TOKENS] = record.max_tokens
        if sampling.top_p is not None:
            attributes[sc.REQUEST_TOP_P] = sampling.top_p
    if record.streaming:
        attributes[sc.REQUEST_STREAM] = True
    if record.sub_caller:
        attributes[sc.GW_SUB_CALLER] = record.sub_caller
    for key, value in record.metadata.items():
        attributes[f"{sc.GW_METADATA_PREFIX}{key}"] = value
    return attributes


def privacy_name(privacy: Privacy | str) -> str:
    """The privacy as the record and spans show it."""
    return privacy.name.lower() if isinstance(privacy, Privacy) else privacy


def _log(record: CallRecord, duration: float, error_message: str) -> None:
    status = record.status
    if status in _QUIET:
        level = logging.INFO
    elif status in _ERROR_LOG:
        level = logging.ERROR
    else:
        level = logging.WARNING
    if not RPC_LOGGER.isEnabledFor(level):
        return
    usage = record.usage
    fields: dict[str, Any] = {
        "request_id": record.request_id,
        "trace_id": record.trace_id,
        "method": record.method,
        "route": record.route,
        "provider": record.provider,
        "model": record.model,
        "status": status,
        "latency_ms": round(duration * 1000.0, 3),
        "tokens_in": usage.prompt_tokens if usage is not None else 0,
        "tokens_out": usage.completion_tokens if usage is not None else 0,
        "cached": record.cached,
        "attempts": len(record.attempts),
        "fallbacks": record.fallbacks,
        "cost_usd": record.cost_usd or 0.0,
        "cut": record.cut,
        "transport": record.transport,
        "tenant": record.tenant,
        "caller": record.caller,
        "error_reason": record.error_reason,
    }
    if record.sub_caller:
        fields["sub_caller"] = record.sub_caller
    if record.usage_counted:
        fields["usage_counted"] = True
    if record.metadata:
        fields["metadata"] = record.metadata
    if error_message:
        fields["error"] = error_message
    # makeRecord + handle skips Logger.log's stack walk for the caller's file and line,
    # which nobody reads on this line.
    line = RPC_LOGGER.makeRecord(
        RPC_LOGGER.name, level, "", 0, "rpc", (), None, extra={"fields": fields}
    )
    RPC_LOGGER.handle(line)
