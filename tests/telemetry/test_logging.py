"""One log line per RPC with its request id; context on every line; secrets redacted."""

from __future__ import annotations

import logging
import re

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from llm_gateway_server.config.telemetry import LogFormat
from llm_gateway_server.core.redaction import redact
from llm_gateway_server.core.types import AttemptOutcome, FinishReason, Privacy, Usage
from llm_gateway_server.telemetry.context import current_request_id
from llm_gateway_server.telemetry.logging import Redactor
from tests.telemetry.records import start as start_call

from .conftest import CALLER_TRACE_ID, TRACEPARENT, LogCapture, MakeTelemetry, attempt_info

RPC_FIELDS = {
    "time",
    "level",
    "request_id",
    "trace_id",
    "method",
    "route",
    "provider",
    "model",
    "status",
    "latency_ms",
    "tokens_in",
    "tokens_out",
    "cached",
    "attempts",
    "error_reason",
}
OPENAI_KEY = "sk-proj-abcdefghijklmnop1234"


def chat(make_telemetry: MakeTelemetry, metadata: list[tuple[str, str]]) -> str:
    telemetry = make_telemetry()
    with start_call(telemetry, "Chat", metadata) as scope:
        logging.getLogger("llm_gateway_server.routing").info("routing %s", "chat")
        scope.set_request(route="chat", privacy=Privacy.STRICT, model_requested="chat")
        with telemetry.observer.attempt(attempt_info("ollama", "llama3.2", 1)) as attempt:
            attempt.finish(AttemptOutcome.SUCCESS, usage=Usage(9, 3))
        scope.set_result(
            provider="ollama",
            model="llama3.2",
            usage=Usage(9, 3),
            cost_usd=0.0,
            finish_reason=FinishReason.STOP,
            attempts=1,
            fallbacks=0,
            cached=False,
        )
        return scope.request_id


async def test_one_json_line_per_rpc_with_the_callers_request_id(
    make_telemetry: MakeTelemetry, logs: LogCapture
) -> None:
    request_id = chat(
        make_telemetry, [("x-request-id", "caller-id-7"), ("traceparent", TRACEPARENT)]
    )
    assert request_id == "caller-id-7"
    (line,) = logs.rpc_records()
    assert line.keys() >= RPC_FIELDS
    assert line["request_id"] == "caller-id-7"
    assert line["trace_id"] == CALLER_TRACE_ID
    assert (
        line.items()
        >= {
            "level": "INFO",
            "method": "Chat",
            "route": "chat",
            "provider": "ollama",
            "model": "llama3.2",
            "status": "OK",
            "tokens_in": 9,
            "tokens_out": 3,
            "cached": False,
            "attempts": 1,
            "error_reason": "",
        }.items()
    )
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["time"])
    # Other lines logged during the RPC carry its ids too.
    (inner,) = [r for r in logs.records() if r["logger"] == "llm_gateway_server.routing"]
    assert inner["request_id"] == "caller-id-7" and inner["trace_id"] == CALLER_TRACE_ID
    assert inner["message"] == "routing chat"
    # ... and nothing after it.
    assert current_request_id() == ""


async def test_request_id_is_generated_when_missing_or_unusable(
    make_telemetry: MakeTelemetry, logs: LogCapture
) -> None:
    first = chat(make_telemetry, [])
    second = chat(make_telemetry, [("x-request-id", "bad id\nwith newline")])
    third = chat(make_telemetry, [("x-request-id", "x" * 500)])
    for request_id in (first, second, third):
        assert re.fullmatch(r"[0-9a-f]{12}4[0-9a-f]{3}[89ab][0-9a-f]{15}", request_id)
    assert len({first, second, third}) == 3
    assert [r["request_id"] for r in logs.rpc_records()] == [first, second, third]


async def test_failed_rpc_line_names_the_reason_and_counts_as_warning(
    make_telemetry: MakeTelemetry, logs: LogCapture
) -> None:
    telemetry = make_telemetry()
    scope = start_call(telemetry, "Embed", [("x-request-id", "r1")])
    scope.end(
        "RESOURCE_EXHAUSTED",
        error_reason="RATE_LIMITED",
        error_message=f"limit hit for key {OPENAI_KEY}",
    )
    scope.end("OK")  # ignored: an RPC ends once
    (line,) = logs.rpc_records()
    assert line["level"] == "WARNING"
    assert line["status"] == "RESOURCE_EXHAUSTED" and line["error_reason"] == "RATE_LIMITED"
    assert OPENAI_KEY not in line["error"] and "***" in line["error"]


async def test_trace_id_of_our_own_span_is_logged_when_tracing(
    make_telemetry: MakeTelemetry, logs: LogCapture, exporter: InMemorySpanExporter
) -> None:
    telemetry = make_telemetry(exporter=exporter)
    with start_call(telemetry, "Health", []) as scope:
        pass
    (span,) = exporter.get_finished_spans()
    (line,) = logs.rpc_records()
    assert span.context is not None
    assert line["trace_id"] == scope.trace_id == format(span.context.trace_id, "032x")


@pytest.mark.parametrize(
    ("message", "secret"),
    [
        ("calling upstream with key %s", OPENAI_KEY),
        ("header Authorization: Bearer %s", "abcdef0123456789"),
        ("url https://user:%s@example.com/v1", "hunter22"),
        ("GET https://example.com/v1?key=%s", "AIzaSyA-1234567890abcdefghij"),
    ],
)
def test_secrets_in_log_messages_are_redacted(logs: LogCapture, message: str, secret: str) -> None:
    logging.getLogger("llm_gateway_server.providers").warning(message, secret)
    (line,) = logs.records()
    assert secret not in line["message"] and "***" in line["message"]


def test_known_secret_values_and_exception_text_are_redacted(logs: LogCapture) -> None:
    logs.install(secrets=("plain-looking-value-42",))
    log = logging.getLogger("llm_gateway_server.providers")
    log.info("configured with %s", "plain-looking-value-42")
    try:
        raise RuntimeError(f"upstream said: invalid api_key={OPENAI_KEY}")
    except RuntimeError:
        log.exception("call failed")
    first, second = logs.records()
    assert first["message"] == "configured with ***"
    assert OPENAI_KEY not in second["exception"] and "RuntimeError" in second["exception"]


async def test_text_format_is_one_readable_line_with_the_request_id(
    make_telemetry: MakeTelemetry, logs: LogCapture
) -> None:
    logs.install(LogFormat.TEXT, secrets=(OPENAI_KEY,))
    chat(make_telemetry, [("x-request-id", "req-text-1")])
    logging.getLogger("x").error("oops %s", OPENAI_KEY)
    routing, rpc, oops = logs.lines()
    assert "[req-text-1] llm_gateway_server.routing: routing chat" in routing
    assert re.search(
        r" INFO +\[req-text-1\] llm_gateway\.rpc: rpc method=Chat route=chat provider=ollama "
        r"model=llama3\.2 status=OK latency_ms=[\d.]+ tokens_in=9 tokens_out=3 cached=False",
        rpc,
    )
    assert "[-] x: oops ***" in oops


@pytest.mark.parametrize(
    "text",
    [
        "postgres://admin:pa55word@db:5432/x",
        "https://token123@example.com/repo",
        "Authorization: BEARER abcdef.123456",
        "key sk-abcdefgh12345678 and pk-abcdefgh12345678 and rk-abcdefgh12345678",
        "anthropic sk-ant-api03-abcdefgh1234",
        "gemini AIzaSyA-1234567890abcdefghij",
        "GET /v1/models?API_KEY=abc&access_token=def&Token=ghi",
        'headers {"X-Api-Key": "abc123", "api-key": "def456", "Authorization": "Basic Zm9v"}',
        "nothing secret in here, just a timeout after 30 s",
    ],
)
def test_the_fast_path_redacts_exactly_like_core_redaction(text: str) -> None:
    # The Redactor skips core.redaction for texts its pre-check clears. This corpus holds a
    # sample of every core.redaction pattern: add one here with each new pattern.
    assert Redactor()(text) == redact(text)
