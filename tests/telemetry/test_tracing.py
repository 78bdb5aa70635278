"""Span tree, GenAI attributes and trace propagation, against real fake upstreams over HTTP."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from llm_gateway_server.config.providers import ProviderConfig, ProviderKind
from llm_gateway_server.core.errors import UpstreamError
from llm_gateway_server.core.types import (
    AttemptOutcome,
    Message,
    Privacy,
    ProviderChatRequest,
    Role,
)
from llm_gateway_server.providers.openai_compatible import OpenAICompatibleProvider
from llm_gateway_server.telemetry.setup import Telemetry
from llm_gateway_server.telemetry.tracing import otlp_traces_configured
from tests.fakes.behaviour import Behaviour, Fault
from tests.fakes.openai import FakeOpenAI
from tests.fakes.server import RecordedRequest
from tests.telemetry.records import start as start_call

from .conftest import CALLER_SPAN_ID, CALLER_TRACE_ID, TRACEPARENT, MakeTelemetry, attempt_info

PROMPT = "What is the capital of France?"


@pytest.fixture
async def failing() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI(Behaviour(fault=Fault.HTTP_ERROR, status=503)) as fake:
        yield fake


@pytest.fixture
async def healthy() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI(Behaviour(content="Paris.", model="model-b-0613")) as fake:
        yield fake


def provider_for(name: str, fake: FakeOpenAI) -> OpenAICompatibleProvider:
    config = ProviderConfig(kind=ProviderKind.OPENAI_COMPATIBLE, api_base=fake.base_url)
    return OpenAICompatibleProvider(name, config, api_key=None)


def traceparent_of(request: RecordedRequest) -> str:
    return {k.lower(): v for k, v in request.headers.items()}.get("traceparent", "")


async def chat_with_one_fallback(
    telemetry: Telemetry,
    failing: FakeOpenAI,
    healthy: FakeOpenAI,
    metadata: list[tuple[str, str]],
) -> None:
    """Drive telemetry as transport and routing do for a Chat whose first target fails."""
    first, second = provider_for("alpha", failing), provider_for("beta", healthy)
    messages = (Message(role=Role.USER, content=PROMPT),)
    request = ProviderChatRequest(model="model-a", messages=messages)
    try:
        with start_call(telemetry, "Chat", metadata) as scope:
            scope.set_request(
                route="chat",
                privacy=Privacy.STRICT,
                model_requested="chat",
                temperature=0.3,
                max_tokens=32,
                messages=messages,
            )
            scope.set_cache(False)
            with telemetry.observer.attempt(attempt_info("alpha", "model-a", 1)) as attempt:
                with pytest.raises(UpstreamError) as failure:
                    await first.chat(request, timeout_s=5)
                attempt.finish(AttemptOutcome.UPSTREAM_ERROR, error=str(failure.value))
            telemetry.observer.fallback("chat", "alpha", "model-a")
            with telemetry.observer.attempt(attempt_info("beta", "model-b", 2)) as attempt:
                answer = await second.chat(
                    ProviderChatRequest(model="model-b", messages=messages), timeout_s=5
                )
                attempt.finish(
                    AttemptOutcome.SUCCESS,
                    usage=answer.usage,
                    response_model=answer.model,
                    finish_reason=answer.finish_reason,
                )
            scope.set_result(
                provider="beta",
                model="model-b",
                usage=answer.usage,
                cost_usd=0.0,
                finish_reason=answer.finish_reason,
                attempts=2,
                fallbacks=1,
                cached=False,
                answer=answer,
            )
    finally:
        await first.aclose()
        await second.aclose()


def spans_by_kind(exporter: InMemorySpanExporter) -> tuple[ReadableSpan, list[ReadableSpan]]:
    spans = exporter.get_finished_spans()
    servers = [s for s in spans if s.kind is SpanKind.SERVER]
    clients = sorted(
        (s for s in spans if s.kind is SpanKind.CLIENT),
        key=lambda s: str((s.attributes or {}).get("llm_gateway.attempt")),
    )
    assert len(servers) == 1 and len(clients) == 2 and len(spans) == 3
    return servers[0], clients


async def test_chat_with_one_fallback_is_one_server_span_and_two_attempt_children(
    make_telemetry: MakeTelemetry,
    exporter: InMemorySpanExporter,
    failing: FakeOpenAI,
    healthy: FakeOpenAI,
) -> None:
    telemetry = make_telemetry(exporter=exporter)
    await chat_with_one_fallback(
        telemetry, failing, healthy, [("traceparent", TRACEPARENT), ("x-request-id", "req-42")]
    )

    server, (first, second) = spans_by_kind(exporter)
    assert server.name == "llmgateway.v1.GatewayService/Chat"
    assert server.context is not None and server.parent is not None
    # The caller's trace goes on: same trace id, the caller's span is the parent.
    assert format(server.context.trace_id, "032x") == CALLER_TRACE_ID
    assert format(server.parent.span_id, "016x") == CALLER_SPAN_ID
    assert (
        dict(server.attributes or {}).items()
        >= {
            "rpc.system": "grpc",
            "rpc.method": "Chat",
            "rpc.grpc.status_code": 0,
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "chat",
            "gen_ai.provider.name": "beta",
            "gen_ai.response.model": "model-b",
            "llm_gateway.route": "chat",
            "llm_gateway.privacy": "strict",
            "llm_gateway.request_id": "req-42",
            "llm_gateway.attempts": 2,
            "llm_gateway.fallbacks": 1,
            "llm_gateway.cache_hit": False,
        }.items()
    )
    assert [e.name for e in server.events] == ["llm_gateway.fallback"]

    for span, provider, model, number in (
        (first, "alpha", "model-a", 1),
        (second, "beta", "model-b", 2),
    ):
        assert span.name == f"chat {model}"
        assert span.parent is not None and span.context is not None
        assert span.parent.span_id == server.context.span_id
        assert span.context.trace_id == server.context.trace_id
        attributes = dict(span.attributes or {})
        assert (
            attributes.items()
            >= {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": provider,
                "gen_ai.request.model": model,
                "gen_ai.request.temperature": 0.3,
                "gen_ai.request.max_tokens": 32,
                "server.address": "127.0.0.1",
                "server.port": 11434,
                "llm_gateway.route": "chat",
                "llm_gateway.attempt": number,
                "llm_gateway.breaker_state": "closed",
                "llm_gateway.privacy": "strict",
            }.items()
        )

    assert first.status.status_code is StatusCode.ERROR
    assert first.attributes is not None
    assert first.attributes["error.type"] == "upstream_error"
    assert first.attributes["llm_gateway.outcome"] == "upstream_error"
    assert "gen_ai.usage.input_tokens" not in first.attributes

    assert second.status.status_code is StatusCode.UNSET
    assert second.attributes is not None
    assert second.attributes["llm_gateway.outcome"] == "success"
    assert second.attributes["gen_ai.response.model"] == "model-b-0613"
    assert second.attributes["gen_ai.usage.input_tokens"] == 11
    assert second.attributes["gen_ai.usage.output_tokens"] == 7
    assert tuple(second.attributes["gen_ai.response.finish_reasons"]) == ("stop",)  # type: ignore[arg-type]
    assert "error.type" not in second.attributes

    # Each upstream HTTP call carried its own attempt span as the parent.
    assert traceparent_of(failing.last_request) == (
        f"00-{CALLER_TRACE_ID}-{format(first.context.span_id, '016x')}-01"
    )
    assert traceparent_of(healthy.last_request) == (
        f"00-{CALLER_TRACE_ID}-{format(second.context.span_id, '016x')}-01"
    )


async def test_without_traceparent_the_server_span_starts_a_trace(
    make_telemetry: MakeTelemetry,
    exporter: InMemorySpanExporter,
    failing: FakeOpenAI,
    healthy: FakeOpenAI,
) -> None:
    telemetry = make_telemetry(exporter=exporter)
    scope = start_call(telemetry, "Chat", [])
    trace_id = scope.trace_id
    scope.end("OK")
    (span,) = exporter.get_finished_spans()
    assert span.parent is None and span.context is not None
    assert len(trace_id) == 32 and trace_id == format(span.context.trace_id, "032x")


async def test_without_exporter_no_span_is_made_but_the_callers_trace_goes_upstream(
    make_telemetry: MakeTelemetry, failing: FakeOpenAI, healthy: FakeOpenAI
) -> None:
    telemetry = make_telemetry()
    assert not telemetry.tracing
    await chat_with_one_fallback(telemetry, failing, healthy, [("traceparent", TRACEPARENT)])
    # No span of ours: the caller's own span is the upstream call's parent.
    assert traceparent_of(healthy.last_request) == TRACEPARENT
    assert traceparent_of(failing.last_request) == TRACEPARENT


async def test_without_exporter_or_traceparent_nothing_is_propagated(
    make_telemetry: MakeTelemetry, failing: FakeOpenAI, healthy: FakeOpenAI
) -> None:
    telemetry = make_telemetry()
    scope = start_call(telemetry, "Chat", [])
    assert scope.trace_id == ""
    scope.end("OK")
    await chat_with_one_fallback(telemetry, failing, healthy, [])
    assert traceparent_of(healthy.last_request) == ""


async def test_failing_rpc_marks_the_server_span_and_an_escaping_error_the_attempt(
    make_telemetry: MakeTelemetry, exporter: InMemorySpanExporter
) -> None:
    telemetry = make_telemetry(exporter=exporter)
    scope = start_call(telemetry, "Chat", [])
    scope.set_request(route="chat", privacy="strict", model_requested="chat")
    with pytest.raises(TimeoutError), telemetry.observer.attempt(attempt_info("alpha", "m", 1)):
        raise TimeoutError
    scope.end("UNAVAILABLE", error_reason="ALL_TARGETS_FAILED", error_message="all failed")
    spans = {s.kind: s for s in exporter.get_finished_spans()}
    server, attempt = spans[SpanKind.SERVER], spans[SpanKind.CLIENT]
    assert server.status.status_code is StatusCode.ERROR
    assert server.attributes is not None and attempt.attributes is not None
    assert server.attributes["rpc.grpc.status_code"] == 14
    assert server.attributes["error.type"] == "ALL_TARGETS_FAILED"
    assert attempt.status.status_code is StatusCode.ERROR
    assert attempt.attributes["error.type"] == "upstream_error"


def test_otlp_export_follows_the_standard_variables() -> None:
    assert not otlp_traces_configured({})
    assert otlp_traces_configured({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317"})
    assert otlp_traces_configured({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4317"})
    assert not otlp_traces_configured({"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://c:4317"})
    assert not otlp_traces_configured({"OTEL_EXPORTER_OTLP_ENDPOINT": ""})
    assert not otlp_traces_configured(
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_SDK_DISABLED": "true"}
    )
    assert not otlp_traces_configured(
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_TRACES_EXPORTER": "none"}
    )


async def test_otlp_env_turns_tracing_on(make_telemetry: MakeTelemetry) -> None:
    # Nothing listens there; with no span recorded, shutdown has nothing to send.
    telemetry = make_telemetry(env={"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"})
    assert telemetry.tracing
    await telemetry.aclose()
    assert not telemetry.tracing


async def test_unsampled_calls_record_nothing_but_still_propagate(
    make_telemetry: MakeTelemetry,
    exporter: InMemorySpanExporter,
    failing: FakeOpenAI,
    healthy: FakeOpenAI,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_off")
    telemetry = make_telemetry(exporter=exporter)
    await chat_with_one_fallback(telemetry, failing, healthy, [("traceparent", TRACEPARENT)])
    assert exporter.get_finished_spans() == ()
    version, trace_id, span_id, flags = traceparent_of(healthy.last_request).split("-")
    assert (version, trace_id, flags) == ("00", CALLER_TRACE_ID, "00")
    assert span_id != CALLER_SPAN_ID


async def test_a_scope_closed_from_another_context_ends_quietly(
    make_telemetry: MakeTelemetry,
    exporter: InMemorySpanExporter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A stream abandoned by its caller may be finalised by the garbage collector elsewhere.
    telemetry = make_telemetry(exporter=exporter)
    scope = start_call(telemetry, "StreamChat", [])
    attempt = telemetry.observer.attempt(attempt_info("alpha", "m", 1, streaming=True))
    attempt.__enter__()

    def close_elsewhere() -> None:
        attempt.__exit__(None, None, None)
        scope.end("CANCELLED")

    await asyncio.to_thread(close_elsewhere)
    assert {s.kind for s in exporter.get_finished_spans()} == {SpanKind.SERVER, SpanKind.CLIENT}
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
