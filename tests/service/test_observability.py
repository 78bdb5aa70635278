"""Traces, metrics and logs of real calls through the real server (issue: observability)."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator

import aiohttp
import grpc
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from llm_gateway_server.app import GatewayServer, build_server
from llm_gateway_server.config.loader import parse_config
from llm_gateway_server.telemetry.logging import configure_logging
from llm_gateway_server.telemetry.setup import setup_telemetry
from llmgateway.v1 import chat_pb2, gateway_service_pb2_grpc
from tests.fakes import Behaviour, FakeOpenAI, FakeUsage, Fault

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
PROMPT = "a private question nobody may record"


@pytest.fixture
async def failing() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI(Behaviour(fault=Fault.HTTP_ERROR, status=503)) as fake:
        yield fake


def _config(failing: FakeOpenAI, healthy: FakeOpenAI) -> str:
    return f"""
server: {{listen: '127.0.0.1:0', drain_delay_s: 0}}
providers:
  alpha: {{kind: openai_compatible, api_base: '{failing.base_url}', locality: local, retry: {{max_attempts: 1}}, probe: {{enabled: false}}}}
  beta: {{kind: openai_compatible, api_base: '{healthy.base_url}', locality: local, probe: {{enabled: false}}}}
routes:
  chat: {{task: chat, targets: [{{provider: alpha, model: model-a}}, {{provider: beta, model: model-b}}]}}
telemetry: {{metrics_listen: '127.0.0.1:0', log_format: json}}
"""


@pytest.fixture
async def observed(
    failing: FakeOpenAI, upstream: FakeOpenAI
) -> AsyncIterator[tuple[GatewayServer, InMemorySpanExporter, io.StringIO]]:
    snapshot = parse_config(_config(failing, upstream))
    exporter = InMemorySpanExporter()
    logs = io.StringIO()
    configure_logging(snapshot.config.telemetry, stream=logs)
    telemetry = setup_telemetry(snapshot.config.telemetry, span_exporter=exporter)
    server = await build_server(snapshot, telemetry=telemetry)
    await server.start()
    try:
        yield server, exporter, logs
    finally:
        await server.stop(0)


async def test_chat_with_one_fallback_is_traced_measured_and_logged(
    observed: tuple[GatewayServer, InMemorySpanExporter, io.StringIO],
    failing: FakeOpenAI,
    upstream: FakeOpenAI,
) -> None:
    server, exporter, logs = observed
    upstream.behaviour = Behaviour(content="an answer", usage=FakeUsage(11, 7))
    request = chat_pb2.ChatRequest(
        model="chat",
        messages=[chat_pb2.Message(role=chat_pb2.ROLE_USER, content=PROMPT)],
        max_tokens=32,
    )
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = gateway_service_pb2_grpc.GatewayServiceStub(channel)
        call = stub.Chat(
            request,
            timeout=10,
            metadata=(("traceparent", TRACEPARENT), ("x-request-id", "req-obs-1")),
        )
        answer = await call
    assert [a.provider for a in answer.attempts] == ["alpha", "beta"]

    # One server span, two attempt spans below it, in the caller's trace.
    spans = exporter.get_finished_spans()
    (rpc,) = [s for s in spans if s.kind is SpanKind.SERVER]
    attempts = sorted(
        (s for s in spans if s.kind is SpanKind.CLIENT), key=lambda s: s.start_time or 0
    )
    assert len(attempts) == 2
    assert format(rpc.context.trace_id, "032x") == TRACE_ID
    for span, provider, model in zip(
        attempts, ("alpha", "beta"), ("model-a", "model-b"), strict=True
    ):
        assert span.parent is not None
        assert span.parent.span_id == rpc.context.span_id
        attributes = dict(span.attributes or {})
        assert attributes["gen_ai.operation.name"] == "chat"
        assert attributes["gen_ai.provider.name"] == provider
        assert attributes["gen_ai.request.model"] == model
        assert attributes["gen_ai.request.max_tokens"] == 32
        assert attributes["llm_gateway.route"] == "chat"
    ok = dict(attempts[1].attributes or {})
    assert (ok["gen_ai.usage.input_tokens"], ok["gen_ai.usage.output_tokens"]) == (11, 7)
    assert tuple(ok["gen_ai.response.finish_reasons"]) == ("stop",)  # type: ignore[arg-type]
    # The upstream call carried the attempt span as its parent.
    sent = {k.lower(): v for k, v in upstream.last_request.headers.items()}["traceparent"]
    assert sent == f"00-{TRACE_ID}-{format(attempts[1].context.span_id, '016x')}-01"
    # No prompt text anywhere by default.
    assert all(PROMPT not in json.dumps(dict(s.attributes or {})) for s in spans)

    # The metrics endpoint counts the traffic.
    port = server.telemetry.metrics_port
    assert port
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{port}/metrics") as resp,
    ):
        text = await resp.text()
    assert 'llm_gateway_fallbacks_total{route="chat"} 1.0' in text
    assert (
        'llm_gateway_requests_total{caller="anonymous",model="model-b",provider="beta",'
        'route="chat",status="OK"} 1.0' in text
    )
    assert "gen_ai_client_operation_duration_seconds_count" in text

    # One JSON line for the RPC, with the request id.
    lines = [json.loads(line) for line in logs.getvalue().splitlines() if line.strip()]
    rpc_lines = [
        line for line in lines if line.get("request_id") == "req-obs-1" and line.get("status")
    ]
    assert len(rpc_lines) == 1
    assert rpc_lines[0]["status"] == "OK"
    assert rpc_lines[0]["attempts"] == 2
    assert PROMPT not in logs.getvalue()
