"""Concurrent budgeted calls through the real server never overrun the tenant's budget."""

from __future__ import annotations

import asyncio
import hashlib

import grpc
import pytest

from llm_gateway_server.app import build_server
from llm_gateway_server.config.loader import parse_config
from llmgateway.v1 import chat_pb2, gateway_service_pb2_grpc, stats_pb2
from tests.fakes import FakeOpenAI
from tests.fakes.behaviour import Behaviour, FakeUsage
from tests.service.test_validation import error_info

#: $1 buys 1000 completion tokens at $1000 per million; prompts are free.
BUDGET_USD = 1.0
KEY = (("authorization", "Bearer key-b"),)


def _config(upstream: FakeOpenAI, redis_url: str | None) -> str:
    digest = hashlib.sha256(b"key-b").hexdigest()
    state = f"redis_url: '{redis_url}', " if redis_url else ""
    return (
        "server: {listen: '127.0.0.1:0', drain_delay_s: 0}\n"
        "providers:\n"
        f"  paid: {{kind: openai_compatible, api_base: '{upstream.base_url}', locality: local,"
        " timeout_s: 20, retry: {max_attempts: 1}, probe: {enabled: false},"
        " prices: {m1: {input_per_mtok: 0, output_per_mtok: 1000}}}\n"
        "routes:\n  chat: {task: chat, targets: [{provider: paid, model: m1}]}\n"
        "auth:\n  enabled: true\n  keys:\n"
        f"    - {{name: team-b, sha256: '{digest}', budget_usd: {BUDGET_USD}}}\n"
        f"state: {{{state}budget_max_tokens: 300}}\n"
        "telemetry: {metrics_listen: ''}\n"
    )


async def _call(stub: gateway_service_pb2_grpc.GatewayServiceStub) -> str:
    request = chat_pb2.ChatRequest(
        messages=[chat_pb2.Message(role=chat_pb2.ROLE_USER, content="write at length")]
    )
    try:
        await stub.Chat(request, timeout=30, metadata=KEY)
    except grpc.aio.AioRpcError as error:
        return f"{error.code().name} {error_info(error).reason}"
    return "OK"


@pytest.mark.parametrize("backend", ["memory", "redis"])
async def test_100_concurrent_calls_without_max_tokens_stay_within_the_budget(
    backend: str, request: pytest.FixtureRequest
) -> None:
    redis_url = request.getfixturevalue("redis_url") if backend == "redis" else None
    # Every answer would be 1000 tokens long: only max_tokens stops it, as with real models.
    behaviour = Behaviour(usage=FakeUsage(5, 1000), honour_max_tokens=True, first_token_delay_s=0.2)
    async with FakeOpenAI(behaviour) as upstream:
        server = await build_server(parse_config(_config(upstream, redis_url)))
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
                stub = gateway_service_pb2_grpc.GatewayServiceStub(channel)
                outcomes = await asyncio.gather(*(_call(stub) for _ in range(100)))
                stats = await stub.GetStats(stats_pb2.GetStatsRequest(), timeout=5, metadata=KEY)
        finally:
            await server.stop(0)
        sent = [r.json["max_tokens"] for r in upstream.requests]
    assert set(outcomes) <= {"OK", "RESOURCE_EXHAUSTED BUDGET_EXCEEDED"}
    assert outcomes.count("OK") == len(sent) >= 4
    # Each call was held to what its reservation covered, and together they fit the budget.
    assert all(0 < tokens <= 300 for tokens in sent)
    assert sum(sent) <= 1000
    spent = stats.budgets[0].spent_usd
    assert 0 < spent <= BUDGET_USD + 1e-9


@pytest.mark.parametrize("backend", ["memory", "redis"])
async def test_gateway_and_caller_budgets_hold_with_auth_off(
    backend: str, request: pytest.FixtureRequest
) -> None:
    redis_url = request.getfixturevalue("redis_url") if backend == "redis" else None
    state = f"redis_url: '{redis_url}', " if redis_url else ""
    behaviour = Behaviour(usage=FakeUsage(5, 1000), honour_max_tokens=True, first_token_delay_s=0.1)
    async with FakeOpenAI(behaviour) as upstream:
        config = (
            _config(upstream, None)
            .replace("auth:\n  enabled: true", "auth:\n  enabled: false")
            .replace(
                "state: {budget_max_tokens: 300}",
                f"state: {{{state}budget_max_tokens: 300,"
                " caller_limits: {budget_usd: 0.4}, gateway_limits: {budget_usd: 0.6}}",
            )
        )
        server = await build_server(parse_config(config))
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
                stub = gateway_service_pb2_grpc.GatewayServiceStub(channel)
                calls = [_caller_call(stub, caller) for caller in ("a", "b") for _ in range(20)]
                outcomes = await asyncio.gather(*calls)
                stats = await stub.GetStats(stats_pb2.GetStatsRequest(), timeout=5)
        finally:
            await server.stop(0)
        sent = [r.json["max_tokens"] for r in upstream.requests]
    assert set(outcomes) <= {"OK", "RESOURCE_EXHAUSTED BUDGET_EXCEEDED"}
    # $0.6 for the gateway buys 600 tokens, $0.4 each caller 400: together they never exceed.
    assert sum(sent) <= 600 and outcomes.count("OK") == len(sent) >= 2
    budgets = {b.tenant: b.spent_usd for b in stats.budgets}
    assert 0 < budgets["@gateway"] <= 0.6 + 1e-9
    assert budgets["@caller:a"] <= 0.4 + 1e-9 and budgets["@caller:b"] <= 0.4 + 1e-9
    spent = sum(r.cost_usd for r in stats.stats)
    assert spent == pytest.approx(budgets["@gateway"])


async def _caller_call(stub: gateway_service_pb2_grpc.GatewayServiceStub, caller: str) -> str:
    request = chat_pb2.ChatRequest(
        messages=[chat_pb2.Message(role=chat_pb2.ROLE_USER, content="write at length")]
    )
    try:
        await stub.Chat(request, timeout=30, metadata=(("x-llm-gateway-caller", caller),))
    except grpc.aio.AioRpcError as error:
        return f"{error.code().name} {error_info(error).reason}"
    return "OK"
