"""Two real gateway processes on one Redis behave as one gateway.

A limit of N requests a minute holds across both; a breaker opened through one is open in
the other; an answer cached through one is served by the other without an upstream call.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
import pytest_asyncio
import yaml
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from llmgateway.v1 import chat_pb2, gateway_service_pb2_grpc, models_pb2
from tests.fakes import Behaviour, FakeOpenAI, Fault
from tests.state.redis_server import RedisServer

pytestmark = [
    pytest.mark.redis,
    pytest.mark.slow,
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.timeout(180),
]

LIMIT_KEY = "limit-key"
MAIN_KEY = "main-key"
RPM = 4
GATEWAY = Path(sys.executable).with_name("llm-gateway")
STARTUP_S = 90.0


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def gateway_config(redis_url: str, healthy: str, broken: str) -> dict[str, object]:
    """Two providers (a healthy and an always-failing fake), keys, Redis state."""

    def provider(base_url: str) -> dict[str, object]:
        return {
            "kind": "openai_compatible",
            "api_base": base_url,
            "locality": "local",
            "timeout_s": 5,
            "retry": {"max_attempts": 1},
            "probe": {"enabled": False},
            "breaker": {"failure_threshold": 2, "reset_timeout_s": 120},
        }

    return {
        "server": {"listen": "127.0.0.1:0", "shutdown_grace_s": 1},
        "providers": {"healthy": provider(healthy), "broken": provider(broken)},
        "routes": {
            "chat": {"task": "chat", "targets": [{"provider": "healthy", "model": "m1"}]},
            "fragile": {
                "task": "chat",
                "default": False,
                "targets": [{"provider": "broken", "model": "m2"}],
            },
        },
        "auth": {
            "enabled": True,
            "keys": [
                {"name": "team-limit", "sha256": _digest(LIMIT_KEY), "rpm": RPM},
                {"name": "team-main", "sha256": _digest(MAIN_KEY)},
            ],
        },
        "cache": {"enabled": True, "ttl_s": 600},
        "state": {"redis_url": redis_url},
        "telemetry": {"metrics_listen": "", "log_format": "json"},
    }


@dataclass
class Replica:
    """One ``llm-gateway serve`` process and a channel to it."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path
    channel: grpc.aio.Channel
    stub: gateway_service_pb2_grpc.GatewayServiceAsyncStub

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    async def chat(self, key: str, text: str, *, route: str = "chat") -> chat_pb2.ChatResponse:
        request = chat_pb2.ChatRequest(
            model=route,
            messages=[chat_pb2.Message(role=chat_pb2.ROLE_USER, content=text)],
            temperature=0.0,
        )
        return await self.stub.Chat(
            request, timeout=15, metadata=(("authorization", f"Bearer {key}"),)
        )


async def _wait_ready(replica: Replica) -> None:
    health = health_pb2_grpc.HealthStub(replica.channel)
    deadline = asyncio.get_running_loop().time() + STARTUP_S
    while True:
        if replica.process.poll() is not None:
            pytest.fail(f"llm-gateway serve exited at start-up:\n{replica.log_tail()}")
        try:
            reply = await health.Check(health_pb2.HealthCheckRequest(service=""), timeout=1)
            if reply.status == health_pb2.HealthCheckResponse.SERVING:
                return
        except grpc.aio.AioRpcError:
            pass
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"llm-gateway serve not ready in {STARTUP_S}s:\n{replica.log_tail()}")
        await asyncio.sleep(0.2)


def _start(config: Path, workdir: Path, index: int) -> Replica:
    port = _free_port()
    log = workdir / f"replica-{index}.log"
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(GATEWAY), "serve", "--config", str(config), "--listen", f"127.0.0.1:{port}"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    stub = gateway_service_pb2_grpc.GatewayServiceStub(channel)
    return Replica(process, port, log, channel, stub)


def _stop(replica: Replica) -> None:
    if replica.process.poll() is None:
        replica.process.send_signal(signal.SIGTERM)
        try:
            replica.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            replica.process.kill()
            replica.process.wait(timeout=5)


@dataclass
class Cluster:
    one: Replica
    two: Replica
    healthy: FakeOpenAI
    broken: FakeOpenAI


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="llmgw-replicas-") as name:
        yield Path(name)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def cluster(redis_server: RedisServer, workdir: Path) -> AsyncIterator[Cluster]:
    """Two gateway processes sharing the session's redis-server, and their fake upstreams."""
    if not GATEWAY.exists():
        pytest.fail(f"{GATEWAY} is missing: run `uv sync`")
    healthy = FakeOpenAI(Behaviour(content="cached answer"))
    broken = FakeOpenAI(Behaviour(fault=Fault.HTTP_ERROR, status=500))
    async with healthy, broken:
        import redis  # the session server is shared: start from an empty one

        client = redis.Redis.from_url(redis_server.url)
        client.flushall()
        client.close()
        config = workdir / "gateway.yaml"
        config.write_text(
            yaml.safe_dump(gateway_config(redis_server.url, healthy.base_url, broken.base_url))
        )
        replicas = [_start(config, workdir, i) for i in (1, 2)]
        try:
            await asyncio.gather(*(_wait_ready(r) for r in replicas))
            yield Cluster(replicas[0], replicas[1], healthy, broken)
        finally:
            for replica in replicas:
                await replica.channel.close()
                _stop(replica)


async def _breaker(replica: Replica, provider: str) -> int:
    health = await replica.stub.Health(
        models_pb2.HealthRequest(), timeout=5, metadata=(("authorization", f"Bearer {MAIN_KEY}"),)
    )
    return next(t.breaker_state for t in health.targets if t.provider == provider)


def _reason(error: grpc.aio.AioRpcError) -> str:
    status = rpc_status.from_call(error)
    assert status is not None, error.details()
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info.reason
    raise AssertionError(f"no ErrorInfo in {error.details()}")


async def test_a_request_limit_holds_across_both_replicas(cluster: Cluster) -> None:
    answered = 0
    refusals: list[tuple[grpc.StatusCode, str]] = []
    for i in range(RPM + 3):
        replica = cluster.one if i % 2 else cluster.two
        try:
            await replica.chat(LIMIT_KEY, f"limited {i}")
            answered += 1
        except grpc.aio.AioRpcError as exc:
            refusals.append((exc.code(), _reason(exc)))
    assert answered == RPM
    assert refusals == [(grpc.StatusCode.RESOURCE_EXHAUSTED, "RATE_LIMITED")] * 3


async def test_an_answer_cached_through_one_replica_is_served_by_the_other(
    cluster: Cluster,
) -> None:
    before = len(cluster.healthy.requests)
    first = await cluster.one.chat(MAIN_KEY, "what is cached?")
    assert not first.cached
    assert len(cluster.healthy.requests) == before + 1
    second = await cluster.two.chat(MAIN_KEY, "what is cached?")
    assert second.cached
    assert second.content == first.content == "cached answer"
    assert len(cluster.healthy.requests) == before + 1  # no upstream call


async def test_a_breaker_opened_through_one_replica_is_open_in_the_other(
    cluster: Cluster,
) -> None:
    for i in range(2):  # failure_threshold: 2
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            await cluster.one.chat(MAIN_KEY, f"fragile {i}", route="fragile")
        assert failed.value.code() is grpc.StatusCode.UNAVAILABLE
    upstream_calls = len(cluster.broken.requests)
    assert upstream_calls == 2
    # Shared asynchronously (never on the request path): replica two has it within a second.
    async with asyncio.timeout(1.0):
        while await _breaker(cluster.two, "broken") != models_pb2.BREAKER_STATE_OPEN:
            await asyncio.sleep(0.02)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await cluster.two.chat(MAIN_KEY, "fragile after", route="fragile")
    assert refused.value.code() is grpc.StatusCode.UNAVAILABLE
    assert len(cluster.broken.requests) == upstream_calls  # replica two did not even try
