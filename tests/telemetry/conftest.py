"""Fixtures: telemetry built by setup_telemetry, an in-memory span exporter, captured logs."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from llm_gateway_server.config.telemetry import LogFormat, TelemetryConfig
from llm_gateway_server.core.types import Privacy
from llm_gateway_server.routing.observer import AttemptInfo
from llm_gateway_server.telemetry.logging import HANDLER_NAME, configure_logging
from llm_gateway_server.telemetry.setup import Telemetry, setup_telemetry

#: A caller's W3C trace context: trace 0af7...319c, its span b7ad...3331, sampled.
CALLER_TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
CALLER_SPAN_ID = "b7ad6b7169203331"
TRACEPARENT = f"00-{CALLER_TRACE_ID}-{CALLER_SPAN_ID}-01"

MakeTelemetry = Callable[..., Telemetry]


def attempt_info(provider: str, model: str, attempt: int, **overrides: Any) -> AttemptInfo:
    """An AttemptInfo as routing fills it for the ``chat`` route."""
    values: dict[str, Any] = {
        "route": "chat",
        "provider": provider,
        "provider_kind": "openai_compatible",
        "model": model,
        "attempt": attempt,
        "operation": "chat",
        "streaming": False,
        "breaker_state": "closed",
        "privacy": Privacy.STRICT,
        "server_address": "127.0.0.1:11434",
        "temperature": 0.3,
        "top_p": None,
        "max_tokens": 32,
    }
    values.update(overrides)
    return AttemptInfo(**values)


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
async def make_telemetry() -> AsyncIterator[MakeTelemetry]:
    """Build telemetry (no OTEL_* env, no metrics port unless asked); closed after the test."""
    built: list[Telemetry] = []

    def make(
        *,
        exporter: InMemorySpanExporter | None = None,
        env: dict[str, str] | None = None,
        **config: Any,
    ) -> Telemetry:
        config.setdefault("metrics_listen", "")
        telemetry = setup_telemetry(
            TelemetryConfig(**config), env=env or {}, span_exporter=exporter
        )
        built.append(telemetry)
        return telemetry

    yield make
    for telemetry in built:
        await telemetry.aclose()


class LogCapture:
    """The gateway's log handler writing into a buffer, as configure_logging installs it."""

    def __init__(self) -> None:
        self._buffer = io.StringIO()

    def install(
        self, log_format: LogFormat = LogFormat.JSON, secrets: tuple[str, ...] = ()
    ) -> None:
        """(Re)configure logging; earlier lines are dropped."""
        self._buffer.seek(0)
        self._buffer.truncate()
        config = TelemetryConfig(log_format=log_format, log_level="INFO")
        configure_logging(config, stream=self._buffer, secrets=secrets)

    def lines(self) -> list[str]:
        """Every line written so far."""
        return self._buffer.getvalue().splitlines()

    def records(self) -> list[dict[str, Any]]:
        """Every JSON line, parsed (fails on a line that is not one JSON object)."""
        docs = [json.loads(line) for line in self.lines()]
        assert all(isinstance(doc, dict) for doc in docs)
        return docs

    def rpc_records(self) -> list[dict[str, Any]]:
        """The per-RPC lines."""
        return [doc for doc in self.records() if doc["logger"] == "llm_gateway.rpc"]


@pytest.fixture
def logs() -> Iterator[LogCapture]:
    """Gateway logging into a buffer (JSON); the root logger is restored afterwards."""
    root = logging.getLogger()
    level = root.level
    capture = LogCapture()
    capture.install()
    yield capture
    for handler in list(root.handlers):
        if handler.get_name() == HANDLER_NAME:
            root.removeHandler(handler)
    root.setLevel(level)
