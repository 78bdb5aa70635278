"""Builds the telemetry the composition root hands to routing and transport."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import prometheus_client
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter

from llm_gateway_server.config.telemetry import TelemetryConfig
from llm_gateway_server.routing.observer import RoutingObserver
from llm_gateway_server.telemetry.exposition import MetricsServer, parse_listen
from llm_gateway_server.telemetry.metrics import GatewayMetrics
from llm_gateway_server.telemetry.observer import TelemetryObserver
from llm_gateway_server.telemetry.rpc import RpcTelemetry
from llm_gateway_server.telemetry.semconv import latest_experimental
from llm_gateway_server.telemetry.tracing import build_tracer_provider, default_env

_INSTRUMENTATION_SCOPE = "llm_gateway_server"


class Telemetry:
    """Metrics, tracing and the scrape endpoint of one gateway process."""

    def __init__(
        self,
        *,
        metrics: GatewayMetrics,
        tracer_provider: TracerProvider | None,
        record_content: bool,
        metrics_address: tuple[str, int] | None,
    ) -> None:
        """Prefer :func:`setup_telemetry`, which reads the config and environment."""
        self.metrics = metrics
        self.tracer_provider = tracer_provider
        tracer: trace.Tracer | None = (
            tracer_provider.get_tracer(_INSTRUMENTATION_SCOPE)
            if tracer_provider is not None
            else None
        )
        self.observer: RoutingObserver = TelemetryObserver(
            metrics, tracer, record_content=record_content
        )
        self.rpc = RpcTelemetry(metrics, tracer, record_content=record_content)
        self._metrics_address = metrics_address
        self._server: MetricsServer | None = None

    @property
    def tracing(self) -> bool:
        """True when spans are recorded (an exporter is configured)."""
        return self.tracer_provider is not None

    @property
    def metrics_port(self) -> int | None:
        """The port the scrape endpoint listens on, once started; ``None`` when off."""
        return self._server.bound_port if self._server is not None else None

    async def start(self) -> None:
        """Start the scrape endpoint, if configured."""
        if self._metrics_address is not None and self._server is None:
            server = MetricsServer(self.metrics.registry, *self._metrics_address)
            await server.start()
            self._server = server

    async def aclose(self) -> None:
        """Stop the scrape endpoint and flush pending spans."""
        server, self._server = self._server, None
        if server is not None:
            await server.stop()
        provider, self.tracer_provider = self.tracer_provider, None
        if provider is not None:
            # Flushing may wait on the OTLP collector: keep the loop free meanwhile.
            await asyncio.to_thread(provider.shutdown)


def setup_telemetry(
    config: TelemetryConfig,
    *,
    service_name: str = "llm-gateway",
    span_exporter: SpanExporter | None = None,
    env: Mapping[str, str] | None = None,
    worker_index: int = 0,
) -> Telemetry:
    """Build the process's telemetry from its config and the OTEL_* environment.

    Tracing is on when OTEL_EXPORTER_OTLP_* variables are set (OTLP/gRPC, batched) or a
    ``span_exporter`` is given (fed synchronously; tests use InMemorySpanExporter); else no
    span is created at all. OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental adds
    the gen_ai.client.inference.* metrics.

    With ``--workers N`` each worker process serves its own metrics on
    ``metrics_listen``'s port + ``worker_index`` (see :func:`metrics_address`), so N
    ports are scraped; this keeps every worker's registry plain and in-process, where
    prometheus_client's multiprocess mode would need a shared directory and loses gauges.

    Args:
        config: The ``telemetry`` section.
        service_name: ``service.name`` of the spans unless OTEL_SERVICE_NAME says otherwise.
        span_exporter: An extra span exporter, for tests.
        env: The environment to read (defaults to ``os.environ``).
        worker_index: This worker's index (0 for a single process).
    """
    environment = env if env is not None else default_env()
    # _created series double the scrape size and no dashboard uses them.
    prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]
    metrics = GatewayMetrics(latest=latest_experimental(environment))
    provider = build_tracer_provider(service_name, env=environment, span_exporter=span_exporter)
    return Telemetry(
        metrics=metrics,
        tracer_provider=provider,
        record_content=config.record_content,
        metrics_address=metrics_address(config, worker_index=worker_index),
    )


def metrics_address(config: TelemetryConfig, *, worker_index: int = 0) -> tuple[str, int] | None:
    """Where this worker serves metrics: ``metrics_listen``'s port + ``worker_index``.

    ``None`` when ``metrics_listen`` is empty; port 0 (any free port) stays 0.
    """
    if not config.metrics_listen:
        return None
    host, port = parse_listen(config.metrics_listen)
    return host, port + worker_index if port else 0
