"""Log formatting for every gateway log: JSON lines (orjson) or readable text.

Each line carries the current request id and trace id (from contextvars), and every text
in it passes through :func:`core.redaction.redact`. Structured fields go in
``extra={"fields": {...}}`` and become top-level keys (JSON) or ``key=value`` pairs (text).
"""

from __future__ import annotations

import logging
import re
import sys
import time
from collections.abc import Iterable, Mapping
from typing import Any, TextIO

import orjson

from llm_gateway_server.config.telemetry import LogFormat, TelemetryConfig
from llm_gateway_server.core.redaction import redact
from llm_gateway_server.telemetry.context import current_request

#: The name of the handler configure_logging installs (and replaces on a second call).
HANDLER_NAME = "llm_gateway"

# A cheap test for anything core.redaction's patterns could match (URL userinfo, bearer
# tokens, key prefixes, key=... parameters, api-key/authorization headers). Most log
# texts have none of these and skip the full set of substitutions (~20x cheaper).
_MAYBE_SECRET = re.compile(r"(?i)://|bearer|[spr]k-|aiza|key|token|api|authoriz")


class Redactor:
    """``redact`` with a fast path for texts that cannot hold a credential."""

    __slots__ = ("_secrets",)

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets = tuple(s for s in secrets if s and len(s) >= 4)

    def suspicious(self, text: str) -> bool:
        """False when ``text`` certainly holds nothing to redact."""
        if _MAYBE_SECRET.search(text) is not None:
            return True
        return any(secret in text for secret in self._secrets)

    def __call__(self, text: str) -> str:
        """Return ``text`` with credentials masked."""
        return redact(text, *self._secrets) if self.suspicious(text) else text

    def fields(self, fields: Mapping[str, Any]) -> Mapping[str, Any]:
        """``fields`` with string values redacted; one scan when none needs it."""
        texts = [value for value in fields.values() if isinstance(value, str)]
        if not self.suspicious("\n".join(texts)):
            return fields
        return {
            key: redact(value, *self._secrets) if isinstance(value, str) else value
            for key, value in fields.items()
        }


class _Clock:
    """ISO 8601 UTC timestamps with milliseconds; the date part is cached per second."""

    __slots__ = ("_prefix", "_second")

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def iso(self, created: float) -> str:
        second = int(created)
        if second != self._second:
            self._second = second
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._prefix}.{int((created - second) * 1000):03d}Z"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, request_id, trace_id, logger, message, fields."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        """Args: exact secret values (API keys from config) to mask besides the patterns."""
        super().__init__()
        self._redact = Redactor(secrets)
        self._clock = _Clock()

    def format(self, record: logging.LogRecord) -> str:
        """Render ``record`` as one line of JSON."""
        redact_text = self._redact
        fields: Mapping[str, Any] | None = record.__dict__.get("fields")
        doc: dict[str, Any] = {
            "time": self._clock.iso(record.created),
            "level": record.levelname,
        }
        if fields is None or "request_id" not in fields:
            request = current_request()
            if request is not None:
                doc["request_id"] = request.request_id
                doc["trace_id"] = request.trace_id
        doc["logger"] = record.name
        doc["message"] = redact_text(record.getMessage())
        if fields:
            doc.update(redact_text.fields(fields))
        if record.exc_info:
            doc["exception"] = redact_text(self.formatException(record.exc_info))
        if record.stack_info:
            doc["stack"] = redact_text(self.formatStack(record.stack_info))
        return orjson.dumps(doc, default=str).decode()


class TextFormatter(logging.Formatter):
    """``time LEVEL [request_id] logger: message key=value ...`` for development."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        """Args: exact secret values (API keys from config) to mask besides the patterns."""
        super().__init__()
        self._redact = Redactor(secrets)
        self._clock = _Clock()

    def format(self, record: logging.LogRecord) -> str:
        """Render ``record`` as one readable line (plus a traceback, if any)."""
        fields: Mapping[str, Any] | None = record.__dict__.get("fields")
        request_id = ""
        if fields is not None and "request_id" in fields:
            request_id = str(fields["request_id"])
        else:
            request = current_request()
            if request is not None:
                request_id = request.request_id
        redact_text = self._redact
        parts = [
            self._clock.iso(record.created),
            f"{record.levelname:<7}",
            f"[{request_id}]" if request_id else "[-]",
            f"{record.name}:",
            redact_text(record.getMessage()),
        ]
        if fields:
            parts.extend(
                f"{key}={value}"
                for key, value in redact_text.fields(fields).items()
                if key not in ("request_id", "trace_id") and value not in ("", None)
            )
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + redact_text(self.formatException(record.exc_info))
        if record.stack_info:
            line += "\n" + redact_text(self.formatStack(record.stack_info))
        return line


def configure_logging(
    config: TelemetryConfig, *, stream: TextIO | None = None, secrets: Iterable[str] = ()
) -> logging.Handler:
    """Send all logs to ``stream`` (stderr) in the configured format and level.

    Calling it again (config reload, tests) replaces the handler it installed before;
    other handlers on the root logger are left alone.

    Args:
        config: The ``telemetry`` section (log_format, log_level).
        stream: Where lines go; stderr by default.
        secrets: Exact secret values (API keys) to mask wherever they appear.
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        if handler.get_name() == HANDLER_NAME:
            root.removeHandler(handler)
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.set_name(HANDLER_NAME)
    formatter: logging.Formatter = (
        JsonFormatter(secrets) if config.log_format is LogFormat.JSON else TextFormatter(secrets)
    )
    handler.setFormatter(formatter)
    root.addHandler(handler)
    root.setLevel(config.log_level.upper())
    return handler
