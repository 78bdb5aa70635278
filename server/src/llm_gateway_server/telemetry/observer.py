"""The RoutingObserver telemetry gives routing: one client span and metrics per attempt."""

from __future__ import annotations

import asyncio
import time
from types import TracebackType

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from llm_gateway_server.core.redaction import redact
from llm_gateway_server.core.types import AttemptOutcome, FinishReason, Usage
from llm_gateway_server.routing.observer import AttemptInfo, AttemptScope
from llm_gateway_server.telemetry import semconv as sc
from llm_gateway_server.telemetry.context import current_request
from llm_gateway_server.telemetry.metrics import GatewayMetrics
from llm_gateway_server.telemetry.tracing import Activation


def split_address(address: str) -> tuple[str, int | None]:
    """``host:port`` (or ``[v6]:port``) into host and port; a bare host has no port."""
    host, sep, port = address.rpartition(":")
    if sep and port.isdigit() and (host.endswith("]") or ":" not in host):
        return host.strip("[]"), int(port)
    return address, None


class _Attempt:
    """One attempt: context manager and AttemptScope at once (no generator, no closure)."""

    __slots__ = ("_activation", "_finished", "_first", "_info", "_observer", "_span", "_start")

    def __init__(self, observer: TelemetryObserver, info: AttemptInfo) -> None:
        self._observer = observer
        self._info = info
        self._span: trace.Span | None = None
        self._activation: Activation | None = None
        self._first: float | None = None
        self._finished = False
        self._start = 0.0

    def __enter__(self) -> AttemptScope:
        observer = self._observer
        observer.metrics.inflight(self._info.provider).inc()
        tracer = observer.tracer
        # Under an unsampled (or no) RPC span the attempt would be dropped too: skip it, and
        # the upstream call carries the RPC's context with its sampled flag off.
        if tracer is not None and trace.get_current_span().is_recording():
            info = self._info
            span = tracer.start_span(
                f"{info.operation} {info.model}",
                kind=SpanKind.CLIENT,
                attributes=observer.start_attributes(info),
            )
            self._span = span
            # Current while the upstream call runs, so propagate.inject() puts this
            # span in the outgoing traceparent.
            self._activation = Activation(trace.set_span_in_context(span))
        self._start = time.perf_counter()
        return self

    def first_chunk(self) -> None:
        """Note the first streamed chunk (only the first call counts)."""
        if self._first is None:
            self._first = time.perf_counter()

    def finish(
        self,
        outcome: AttemptOutcome,
        *,
        usage: Usage | None = None,
        response_model: str = "",
        finish_reason: FinishReason | None = None,
        error: str = "",
        retries: int = 0,
    ) -> None:
        """Record how the attempt ended; later calls are ignored."""
        if self._finished:
            return
        self._finished = True
        duration = time.perf_counter() - self._start
        info = self._info
        error_type = "" if outcome is AttemptOutcome.SUCCESS else outcome.value
        ttfc = self._first - self._start if self._first is not None else None
        tokens = (usage.prompt_tokens, usage.completion_tokens) if usage is not None else None
        self._observer.metrics.record_attempt(
            operation=info.operation,
            provider=info.provider,
            request_model=info.model,
            response_model=response_model,
            error_type=error_type,
            duration_s=duration,
            time_to_first_chunk_s=ttfc,
            usage=tokens,
        )
        span = self._span
        if span is None:
            return
        attributes: dict[str, AttributeValue] = {sc.GW_OUTCOME: outcome.value}
        if response_model:
            attributes[sc.RESPONSE_MODEL] = response_model
        if tokens is not None:
            attributes[sc.USAGE_INPUT_TOKENS] = tokens[0]
            if info.operation != "embeddings":
                attributes[sc.USAGE_OUTPUT_TOKENS] = tokens[1]
        if finish_reason is not None:
            attributes[sc.RESPONSE_FINISH_REASONS] = (finish_reason.value,)
        if ttfc is not None:
            attributes[sc.RESPONSE_TIME_TO_FIRST_CHUNK] = ttfc
        if retries:
            attributes[sc.GW_RETRIES] = retries
        if error_type:
            attributes[sc.ERROR_TYPE] = error_type
            span.set_status(Status(StatusCode.ERROR, redact(error) if error else error_type))
        span.set_attributes(attributes)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self._finished:
            # Routing left without an outcome: it was cancelled or something raised.
            if exc is None:
                self.finish(AttemptOutcome.SUCCESS)
            elif isinstance(exc, asyncio.CancelledError | GeneratorExit):
                self.finish(AttemptOutcome.CANCELLED, error="cancelled")
            else:
                self.finish(AttemptOutcome.UPSTREAM_ERROR, error=type(exc).__name__)
        self._observer.metrics.inflight(self._info.provider).dec()
        span = self._span
        if span is not None:
            if self._activation is not None:
                self._activation.undo()
            span.end()


class TelemetryObserver:
    """Implements routing's RoutingObserver with spans (when tracing) and metrics."""

    def __init__(
        self, metrics: GatewayMetrics, tracer: trace.Tracer | None, *, record_content: bool
    ) -> None:
        """Args: the metrics to record into, a tracer or ``None`` for no spans, and whether
        prompt text may go into spans."""
        self.metrics = metrics
        self.tracer = tracer
        self.record_content = record_content

    def attempt(self, info: AttemptInfo) -> _Attempt:
        """Open the scope of one attempt; the upstream call runs inside it."""
        return _Attempt(self, info)

    def start_attributes(self, info: AttemptInfo) -> dict[str, AttributeValue]:
        """Span attributes known when an attempt starts."""
        attributes: dict[str, AttributeValue] = {
            sc.OPERATION_NAME: info.operation,
            sc.PROVIDER_NAME: info.provider,
            sc.REQUEST_MODEL: info.model,
            sc.GW_ROUTE: info.route,
            sc.GW_ATTEMPT: info.attempt,
            sc.GW_BREAKER_STATE: info.breaker_state,
            sc.GW_PRIVACY: info.privacy.name.lower(),
            sc.GW_PROVIDER_KIND: info.provider_kind,
        }
        if info.streaming:
            attributes[sc.REQUEST_STREAM] = True
        if info.server_address:
            host, port = split_address(info.server_address)
            attributes[sc.SERVER_ADDRESS] = host
            if port is not None:
                attributes[sc.SERVER_PORT] = port
        if info.temperature is not None:
            attributes[sc.REQUEST_TEMPERATURE] = info.temperature
        if info.top_p is not None:
            attributes[sc.REQUEST_TOP_P] = info.top_p
        if info.max_tokens is not None:
            attributes[sc.REQUEST_MAX_TOKENS] = info.max_tokens
        if self.record_content:
            request = current_request()
            if request is not None and request.input_messages is not None:
                attributes[sc.INPUT_MESSAGES] = request.input_messages
        return attributes

    def fallback(self, route: str, from_provider: str, from_model: str) -> None:
        """Count the fallback and mark it on the RPC's span."""
        self.metrics.fallback(route)
        if self.tracer is not None:
            span = trace.get_current_span()
            if span.is_recording():
                span.add_event(
                    sc.GW_FALLBACK_EVENT,
                    {sc.PROVIDER_NAME: from_provider, sc.REQUEST_MODEL: from_model},
                )

    def breaker_transition(self, provider: str, model: str, old: str, new: str) -> None:
        """Set the breaker gauge (routing logs the change itself, once, with its failures)."""
        self.metrics.breaker_state(provider, model, new)
