"""The ``telemetry:`` section: metrics endpoint, logs, tracing."""

from __future__ import annotations

import enum

from pydantic import BaseModel, ConfigDict

from llm_gateway_server.config.defaults import DEFAULT_METRICS_LISTEN

_Strict = ConfigDict(extra="forbid", frozen=True)


class LogFormat(enum.StrEnum):
    """JSON lines for production, readable text for development."""

    JSON = "json"
    TEXT = "text"


class TelemetryConfig(BaseModel):
    """Observability settings. OTLP export is configured by the standard OTEL_* variables."""

    model_config = _Strict
    #: ``HOST:PORT`` of the Prometheus scrape endpoint; ``""`` turns it off.
    metrics_listen: str = DEFAULT_METRICS_LISTEN
    log_format: LogFormat = LogFormat.JSON
    log_level: str = "INFO"
    #: Record prompt and answer text in spans (off: never recorded).
    record_content: bool = False
