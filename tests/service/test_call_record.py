"""The call record through the real server: every exit path logged, charged and counted."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from prometheus_client import generate_latest

from llm_gateway_server.app import GatewayServer, build_server
from llm_gateway_server.config.loader import parse_config
from llm_gateway_server.state.tokens import count_tokens, load_tokenizer
from llm_gateway_server.telemetry.logging import configure_logging
from llm_gateway_server.telemetry.setup import setup_telemetry
from llmgateway.v1 import chat_pb2, gateway_service_pb2_grpc, stats_pb2
from tests.fakes import FakeOpenAI
from tests.fakes.behaviour import Behaviour, FakeUsage, Fault
from tests.service.test_validation import error_info

LONG = " ".join(f"word{i}" for i in range(300))


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _config(upstream: FakeOpenAI, *, auth: bool = False, extra: str = "") -> str:
    keys = (
        "auth:\n  enabled: true\n  keys:\n"
        f"    - {{name: team-a, sha256: '{_digest('key-a')}', budget_usd: 10}}\n"
        if auth
        else ""
    )
    return (
        "server: {listen: '127.0.0.1:0', drain_delay_s: 0, shutdown_grace_s: 5}\n"
        "providers:\n"
        f"  local: {{kind: openai_compatible, api_base: '{upstream.base_url}', locality: local,"
        " timeout_s: 10, retry: {max_attempts: 1}, probe: {enabled: false},"
        " prices: {m1: {input_per_mtok: 1000, output_per_mtok: 2000}}}\n"
        "routes:\n  chat: {task: chat, targets: [{provider: local, model: m1}]}\n"
        "telemetry: {metrics_listen: '', log_format: json}\n" + keys + extra
    )


class Gateway:
    """A started server with a stub, and its JSON log lines."""

    def __init__(self, server: GatewayServer, logs: io.StringIO) -> None:
        self.server = server
        self.logs = logs
        self.channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
        self.stub = gateway_service_pb2_grpc.GatewayServiceStub(self.channel)

    def rpc_lines(self, method: str | None = None) -> list[dict[str, Any]]:
        lines = [json.loads(line) for line in self.logs.getvalue().splitlines() if line.strip()]
        return [
            line
            for line in lines
            if line.get("logger") == "llm_gateway.rpc"
            and (method is None or line.get("method") == method)
        ]

    async def line_for(self, method: str) -> dict[str, Any]:
        """The log line of the one ``method`` call (it is written when the call closes)."""
        for _ in range(500):
            lines = self.rpc_lines(method)
            if lines:
                assert len(lines) == 1, lines
                return lines[0]
            await asyncio.sleep(0.01)
        raise AssertionError(f"no log line for {method}")


@pytest.fixture
async def start() -> AsyncIterator[Any]:
    running: list[Gateway] = []

    async def start(config_text: str) -> Gateway:
        snapshot = parse_config(config_text)
        logs = io.StringIO()
        configure_logging(snapshot.config.telemetry, stream=logs)
        server = await build_server(snapshot, telemetry=setup_telemetry(snapshot.config.telemetry))
        await server.start()
        await asyncio.to_thread(load_tokenizer)
        gateway = Gateway(server, logs)
        running.append(gateway)
        return gateway

    yield start
    for gateway in running:
        await gateway.channel.close()
        await gateway.server.stop(0)


def _stream(content: str = "hello", **kwargs: Any) -> chat_pb2.StreamChatRequest:
    return chat_pb2.StreamChatRequest(
        messages=[chat_pb2.Message(role=chat_pb2.ROLE_USER, content=content)], **kwargs
    )


def _chat(content: str = "hello", **kwargs: Any) -> chat_pb2.ChatRequest:
    return chat_pb2.ChatRequest(
        messages=[chat_pb2.Message(role=chat_pb2.ROLE_USER, content=content)], **kwargs
    )


KEY = (("authorization", "Bearer key-a"),)


async def _row(gw: Gateway, **filters: str) -> stats_pb2.RouteStats:
    stats = await gw.stub.GetStats(stats_pb2.GetStatsRequest(**filters), timeout=5, metadata=KEY)
    assert len(stats.stats) == 1, stats
    return stats.stats[0]


async def test_cut_stream_is_logged_charged_and_counted(start: Any, upstream: FakeOpenAI) -> None:
    upstream.behaviour = Behaviour(content=LONG, fault=Fault.CUT_STREAM, cut_after=4)
    gw = await start(_config(upstream, auth=True))
    deltas: list[chat_pb2.StreamChatResponse] = []

    async def read() -> None:
        async for item in gw.stub.StreamChat(_stream(), timeout=10, metadata=KEY):
            deltas.append(item)

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await read()
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert error_info(caught.value).reason == "STREAM_INTERRUPTED"
    summary = deltas[-1].summary
    assert summary.cut and summary.provider == "local"
    delivered = "".join(d.delta.content for d in deltas[:-1])
    assert delivered

    line = await gw.line_for("StreamChat")
    assert (line["provider"], line["model"], line["attempts"]) == ("local", "m1", 1)
    assert line["cut"] is True and line["status"] == "UNAVAILABLE"
    assert line["tokens_out"] == count_tokens(delivered) > 0
    assert line["cost_usd"] > 0

    row = await _row(gw)
    assert (row.requests, row.errors) == (1, 1)
    assert row.completion_tokens == count_tokens(delivered)
    assert row.cost_usd == pytest.approx(line["cost_usd"])
    stats = await gw.stub.GetStats(stats_pb2.GetStatsRequest(), timeout=5, metadata=KEY)
    assert stats.budgets[0].spent_usd == pytest.approx(line["cost_usd"])


async def test_cancelled_stream_is_charged_what_it_delivered(
    start: Any, upstream: FakeOpenAI
) -> None:
    upstream.behaviour = Behaviour(content=LONG, chunk_delay_s=0.02)
    gw = await start(_config(upstream, auth=True))
    call = gw.stub.StreamChat(_stream(), timeout=30, metadata=KEY)
    received = 0
    async for _ in call:
        received += 1
        if received == 5:
            call.cancel()
            break

    line = await gw.line_for("StreamChat")
    assert line["status"] == "CANCELLED" and line["error_reason"] == "CANCELLED"
    assert (line["provider"], line["model"]) == ("local", "m1")
    assert line["attempts"] >= 1
    assert line["tokens_out"] >= 5 and line["cost_usd"] > 0
    row = await _row(gw)
    assert row.completion_tokens == line["tokens_out"]
    assert row.cost_usd == pytest.approx(line["cost_usd"])


async def test_an_answer_without_usage_is_charged_a_token_count(
    start: Any, upstream: FakeOpenAI
) -> None:
    upstream.behaviour = Behaviour(content=LONG, usage=FakeUsage(0, 0))
    gw = await start(_config(upstream, auth=True))
    answer = await gw.stub.Chat(_chat("count me"), timeout=10, metadata=KEY)
    assert answer.usage.completion_tokens == count_tokens(LONG)
    assert answer.usage.prompt_tokens > 0
    assert answer.cost_usd > 0
    row = await _row(gw)
    assert row.completion_tokens == count_tokens(LONG)
    line = await gw.line_for("Chat")
    assert line["usage_counted"] is True


async def test_caller_and_metadata_in_the_log_line_and_getstats(
    start: Any, upstream: FakeOpenAI
) -> None:
    gw = await start(_config(upstream))
    for caller in ("billing", "search"):
        await gw.stub.Chat(
            _chat(metadata={"ticket": "T-1"}),
            timeout=10,
            metadata=(("x-llm-gateway-caller", caller),),
        )
    stats = await gw.stub.GetStats(stats_pb2.GetStatsRequest(), timeout=5)
    rows = sorted((r.tenant, r.caller, r.route, r.requests) for r in stats.stats)
    assert rows == [("anonymous", "billing", "chat", 1), ("anonymous", "search", "chat", 1)]
    only = await gw.stub.GetStats(stats_pb2.GetStatsRequest(caller="search"), timeout=5)
    assert [r.caller for r in only.stats] == ["search"]
    lines = gw.rpc_lines("Chat")
    assert sorted(line["caller"] for line in lines) == ["billing", "search"]
    assert all(line["metadata"] == {"ticket": "T-1"} for line in lines)


async def test_with_auth_the_caller_header_never_changes_the_tenant(
    start: Any, upstream: FakeOpenAI
) -> None:
    gw = await start(_config(upstream, auth=True))
    metadata = (*KEY, ("x-llm-gateway-caller", "someone-else"))
    await gw.stub.Chat(_chat(), timeout=10, metadata=metadata)
    line = await gw.line_for("Chat")
    assert (line["tenant"], line["caller"], line["sub_caller"]) == (
        "team-a",
        "team-a",
        "someone-else",
    )


@pytest.mark.parametrize(
    ("metadata", "field"),
    [
        ({f"k{i}": "v" for i in range(17)}, "metadata"),
        ({"big": "x" * 257}, "metadata[big]"),
    ],
)
async def test_oversized_metadata_is_invalid_argument_naming_the_field(
    start: Any, upstream: FakeOpenAI, metadata: dict[str, str], field: str
) -> None:
    gw = await start(_config(upstream))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await gw.stub.Chat(_chat(metadata=metadata), timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    info = error_info(caught.value)
    assert info.reason == "INVALID_FIELD" and info.metadata["field"] == field
    assert not upstream.requests


async def test_an_undecodable_request_is_invalid_argument(start: Any, upstream: FakeOpenAI) -> None:
    gw = await start(_config(upstream))
    raw = gw.channel.unary_unary(
        "/llmgateway.v1.GatewayService/Chat",
        request_serializer=lambda body: body,
        response_deserializer=chat_pb2.ChatResponse.FromString,
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await raw(b"\xff\xff\xff\xff", timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(caught.value).metadata["field"] == "request"
    line = await gw.line_for("Chat")
    assert line["status"] == "INVALID_ARGUMENT"


async def test_fallbacks_are_one_formula_in_answer_log_and_stats(
    start: Any, upstream: FakeOpenAI
) -> None:
    async with FakeOpenAI(Behaviour(fault=Fault.HTTP_ERROR)) as broken:
        config = _config(upstream).replace(
            "routes:\n  chat: {task: chat, targets: [{provider: local, model: m1}]}\n",
            f"  broken: {{kind: openai_compatible, api_base: '{broken.base_url}',"
            " locality: local, retry: {max_attempts: 1}, probe: {enabled: false}}\n"
            "routes:\n  chat: {task: chat, targets: [{provider: broken, model: b1},"
            " {provider: local, model: m1}]}\n",
        )
        gw = await start(config)
        answer = await gw.stub.Chat(_chat(), timeout=10)
        stats = await gw.stub.GetStats(stats_pb2.GetStatsRequest(), timeout=5)
    assert [a.provider for a in answer.attempts] == ["broken", "local"]
    line = await gw.line_for("Chat")
    assert (line["attempts"], line["fallbacks"]) == (2, 1)
    assert stats.stats[0].fallbacks == 1


async def test_each_breaker_change_is_logged_once(start: Any, upstream: FakeOpenAI) -> None:
    async with FakeOpenAI(Behaviour(fault=Fault.HTTP_ERROR)) as broken:
        config = _config(upstream).replace(
            "routes:\n  chat: {task: chat, targets: [{provider: local, model: m1}]}\n",
            f"  broken: {{kind: openai_compatible, api_base: '{broken.base_url}',"
            " locality: local, retry: {max_attempts: 1}, probe: {enabled: false},"
            " breaker: {failure_threshold: 1}}\n"
            "routes:\n  chat: {task: chat, targets: [{provider: broken, model: b1},"
            " {provider: local, model: m1}]}\n",
        )
        gw = await start(config)
        await gw.stub.Chat(_chat(), timeout=10)
    lines = [line for line in gw.logs.getvalue().splitlines() if "circuit breaker" in line]
    assert len(lines) == 1 and "closed -> open" in lines[0]


async def test_a_stream_cut_by_the_callers_deadline_is_deadline_exceeded(
    start: Any, upstream: FakeOpenAI
) -> None:
    upstream.behaviour = Behaviour(content=LONG, chunk_delay_s=0.05)
    gw = await start(_config(upstream))

    async def read() -> None:
        async for _ in gw.stub.StreamChat(_stream(), timeout=1):
            pass

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await read()
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    line = await gw.line_for("StreamChat")
    assert line["status"] == "DEADLINE_EXCEEDED" and line["provider"] == "local"
    assert line["tokens_out"] > 0


async def test_caller_and_target_labels_are_bounded_with_an_other_bucket(
    start: Any, upstream: FakeOpenAI
) -> None:
    config = _config(upstream).replace(
        "drain_delay_s: 0",
        "drain_delay_s: 0, allow_direct_targets: true, max_caller_labels: 2, max_target_labels: 2",
    )
    gw = await start(config)
    for i, model in enumerate(("chat", "local/m2", "local/m3", "local/m4")):
        caller = (("x-llm-gateway-caller", f"svc-{i}"),)
        await gw.stub.Chat(_chat(model=model), timeout=10, metadata=caller)
    text = generate_latest(gw.server.telemetry.metrics.registry).decode()
    requests = [
        line for line in text.splitlines() if line.startswith("llm_gateway_requests_total{")
    ]
    callers = {line.split('caller="')[1].split('"')[0] for line in requests}
    routes = {line.split('route="')[1].split('"')[0] for line in requests}
    assert callers == {"svc-0", "svc-1", "other"}
    assert routes == {"chat", "local/m2", "other"}
    # Stats rows are bounded the same way; the log line keeps the real caller.
    stats = await gw.stub.GetStats(stats_pb2.GetStatsRequest(), timeout=5)
    rows = sorted((r.route, r.caller, r.requests) for r in stats.stats)
    assert rows == [("chat", "svc-0", 1), ("local/m2", "svc-1", 1), ("other", "other", 2)]
    assert {line["caller"] for line in gw.rpc_lines("Chat")} == {f"svc-{i}" for i in range(4)}


async def test_gateway_and_caller_limits_apply_with_auth_off(
    start: Any, upstream: FakeOpenAI
) -> None:
    gw = await start(
        _config(upstream, extra="state: {caller_limits: {rpm: 2}, gateway_limits: {rpm: 3}}\n")
    )

    async def call(caller: str) -> str:
        try:
            await gw.stub.Chat(_chat(), timeout=10, metadata=(("x-llm-gateway-caller", caller),))
        except grpc.aio.AioRpcError as error:
            return f"{error.code().name} {error_info(error).reason}"
        return "OK"

    refused = "RESOURCE_EXHAUSTED RATE_LIMITED"
    # Each caller has 2 a minute, and all of them together 3.
    assert [await call("a"), await call("a"), await call("a")] == ["OK", "OK", refused]
    assert [await call("b"), await call("b")] == ["OK", refused]
