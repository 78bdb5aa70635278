"""Tracer set-up: OTLP export when the standard OTEL_* variables ask for it, else none.

With no exporter the gateway creates no spans at all (cheaper than the SDK's no-op path),
yet an incoming ``traceparent`` is still made current, so the upstream call carries the
caller's trace on.
"""

from __future__ import annotations

import contextvars
import logging
import os
from collections.abc import Iterable, Mapping, Sequence

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter

logger = logging.getLogger(__name__)

_TRUE = frozenset({"1", "true", "yes", "on"})
_SIGNAL_SPECIFIC = ("_METRICS_", "_LOGS_")


def otlp_traces_configured(env: Mapping[str, str]) -> bool:
    """True when an OTEL_EXPORTER_OTLP_* variable concerning traces has a value.

    ``OTEL_SDK_DISABLED=true`` or ``OTEL_TRACES_EXPORTER=none`` turn export off regardless.
    """
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() in _TRUE:
        return False
    if env.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "none":
        return False
    return any(
        key.startswith("OTEL_EXPORTER_OTLP_")
        and value.strip()
        and not any(part in key for part in _SIGNAL_SPECIFIC)
        for key, value in env.items()
    )


def build_tracer_provider(
    service_name: str,
    *,
    env: Mapping[str, str],
    span_exporter: SpanExporter | None = None,
) -> TracerProvider | None:
    """A tracer provider exporting to OTLP and/or ``span_exporter``; ``None`` for neither.

    Args:
        service_name: ``service.name`` unless OTEL_SERVICE_NAME sets one.
        env: The environment to read OTEL_* variables from.
        span_exporter: An extra exporter fed synchronously (tests: InMemorySpanExporter).
    """
    otlp = otlp_traces_configured(env)
    if not otlp and span_exporter is None:
        return None
    # Resource.create merges OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME; ours must not
    # override an operator's explicit service name.
    attributes = {} if env.get("OTEL_SERVICE_NAME") else {"service.name": service_name}
    provider = TracerProvider(resource=Resource.create(attributes))
    if span_exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(span_exporter))
    if otlp:
        protocol = env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or env.get(
            "OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"
        )
        if protocol.strip() not in ("", "grpc"):
            logger.warning("OTLP protocol %r is not supported; exporting with grpc", protocol)
        # Imported here: grpc and protobuf stubs are only worth loading when exporting.
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


def default_env() -> Mapping[str, str]:
    """The process environment (read once, at set-up)."""
    return dict(os.environ)


class ContextExtractor:
    """Reads W3C trace context (or whatever OTEL_PROPAGATORS names) from gRPC metadata."""

    __slots__ = ("_fields",)

    def __init__(self, fields: Iterable[str] | None = None) -> None:
        self._fields = frozenset(
            fields if fields is not None else propagate.get_global_textmap().fields
        )

    def extract(self, metadata: Sequence[tuple[str, str | bytes]]) -> Context | None:
        """The caller's context, or ``None`` when the metadata carries none (the common case)."""
        carrier: dict[str, str] | None = None
        fields = self._fields
        for key, value in metadata:
            if key in fields:
                if carrier is None:
                    carrier = {}
                carrier[key] = value if isinstance(value, str) else value.decode("latin-1")
        if carrier is None:
            return None
        return propagate.extract(carrier)


def remote_span_context(ctx: Context) -> trace.SpanContext | None:
    """The valid span context ``ctx`` holds, if any."""
    span_context = trace.get_current_span(ctx).get_span_context()
    return span_context if span_context.is_valid else None


# Set alongside each attach: resetting it tells whether we are still in the Context (the
# contextvars one) that attached, where OpenTelemetry's own detach can succeed.
_ATTACHED: contextvars.ContextVar[object] = contextvars.ContextVar("llm_gateway_otel_attached")


class Activation:
    """An OTel context made current, and undone only in the contextvars Context that did it.

    A scope left from another Context (a stream closed by the garbage collector, a copied
    context in a thread) cannot reset the variable there, and OpenTelemetry would log an
    error for trying; that Context's own value dies with it anyway.
    """

    __slots__ = ("_marker", "_token")

    def __init__(self, ctx: Context) -> None:
        self._token = otel_context.attach(ctx)
        self._marker = _ATTACHED.set(self)

    def undo(self) -> None:
        """Restore the previous OTel context, if called where it was attached."""
        try:
            _ATTACHED.reset(self._marker)
        except (ValueError, RuntimeError):
            return
        otel_context.detach(self._token)
