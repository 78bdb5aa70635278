"""The ``telemetry:`` section: metrics endpoint, logs, tracing."""

from __future__ import annotations

import enum
import logging

from pydantic import BaseModel, ConfigDict, field_validator

from llm_gateway_server.config.defaults import DEFAULT_METRICS_LISTEN

_Strict = ConfigDict(extra="forbid", frozen=True)


class LogFormat(enum.StrEnum):
    """JSON lines for production, readable text for development."""

    JSON = "json"
    TEXT = "text"


class TelemetryConfig(BaseModel):
    """Observability settings. OTLP export is configured by the standard OTEL_* variables.

    With ``--workers N``, worker ``i`` serves its metrics on ``metrics_listen``'s port + ``i``.
    """

    model_config = _Strict
    #: ``HOST:PORT`` of the Prometheus scrape endpoint; ``""`` turns it off.
    metrics_listen: str = DEFAULT_METRICS_LISTEN
    log_format: LogFormat = LogFormat.JSON
    #: DEBUG, INFO, WARNING, ERROR or CRITICAL (any case).
    log_level: str = "INFO"
    #: Record prompt and answer text in spans (off: never recorded).
    record_content: bool = False

    @field_validator("metrics_listen")
    @classmethod
    def _check_listen(cls, value: str) -> str:
        if not value:
            return value
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or int(port) > 65535:
            raise ValueError(f"must be HOST:PORT or empty, got {value!r}")
        return value

    @field_validator("log_level")
    @classmethod
    def _check_level(cls, value: str) -> str:
        level = value.upper()
        if level not in logging.getLevelNamesMapping():
            raise ValueError(f"unknown log level {value!r}")
        return level
