"""The benchmarked systems: how each one is started, probed for readiness and called."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import aiohttp
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.loadgen import Caller, GrpcCaller, HttpCaller
from bench.processes import Managed, free_port

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
GATEWAY_BIN = REPO_DIR / ".venv" / "bin" / "llm-gateway"
LITELLM_BIN = BENCH_DIR / ".venv-litellm" / "bin" / "litellm"
PORTKEY_JS = BENCH_DIR / "node_modules" / "@portkey-ai" / "gateway" / "build" / "start-server.js"
#: The model the fake upstream is asked for through the HTTP peers and the baseline.
UPSTREAM_MODEL = "bench-model"
#: Readiness name of the gateway in grpc.health.v1 (its Kubernetes readiness probe).
GATEWAY_HEALTH_SERVICE = "llmgateway.v1.GatewayService"
_READY_TIMEOUT_S = 120.0
_POLL_S = 0.01


@dataclass(frozen=True)
class System:
    """One system under test."""

    #: Short key (``gateway``, ``litellm``), also the log file name.
    key: str
    #: Name in the table.
    label: str
    #: ``grpc`` or ``http``: which client the load generator uses.
    protocol: str
    #: The command (without taskset); empty for calling the upstream directly.
    command: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    #: ``grpc-health``, ``grpc-chat`` or ``http-chat``.
    readiness: str = "http-chat"
    #: gRPC address or HTTP base URL the load generator calls.
    address: str = ""
    model: str = UPSTREAM_MODEL
    headers: dict[str, str] = field(default_factory=dict)
    #: Helper processes (name, command) started before the system, on the load generator's core.
    sidecars: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def caller(self) -> Caller:
        """A fresh client for this system."""
        if self.protocol == "grpc":
            return GrpcCaller(self.address, self.model)
        return HttpCaller(self.address, self.model, self.headers)


def python_module(module: str, *args: str) -> tuple[str, ...]:
    """Run a bench module with this interpreter (the project venv)."""
    return (sys.executable, "-m", module, *args)


def upstream_command(port: int, stream_rate: float) -> tuple[str, ...]:
    """The fake upstream's command line."""
    return python_module("bench.upstream", "--port", str(port), "--stream-rate", str(stream_rate))


def direct(upstream_base: str) -> System:
    """Calling the fake upstream directly: the zero point of added latency."""
    return System("direct", "upstream (direct)", "http", address=upstream_base)


def baseline(port: int, upstream_base: str) -> System:
    """The bare pass-through (bench/passthrough.py)."""
    command = python_module(
        "bench.passthrough", "--listen", f"127.0.0.1:{port}", "--upstream", upstream_base
    )
    return System(
        "baseline",
        "bare pass-through",
        "grpc",
        command,
        readiness="grpc-chat",
        address=f"127.0.0.1:{port}",
    )


def gateway(port: int, upstream_base: str, *, telemetry: bool = False) -> System:
    """llm-gateway on bench/gateway.yaml.

    With ``telemetry`` its Prometheus endpoint is on and spans are exported over OTLP/gRPC to
    a sink process (bench/otlp_sink.py), as a production setup with a collector would, with the
    standard head sampler at ``BENCH_TRACE_SAMPLE`` (default 0.1: one trace in ten, the usual
    production setting; 1 exports every span, which costs about a quarter of the throughput).
    """
    command = (
        str(GATEWAY_BIN),
        "serve",
        "--config",
        str(BENCH_DIR / "gateway.yaml"),
        "--listen",
        f"127.0.0.1:{port}",
    )
    env = {"BENCH_UPSTREAM_BASE": upstream_base, "BENCH_METRICS_LISTEN": ""}
    sidecars: tuple[tuple[str, tuple[str, ...]], ...] = ()
    if telemetry:
        sink_port = free_port()
        env["BENCH_METRICS_LISTEN"] = f"127.0.0.1:{free_port()}"
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://127.0.0.1:{sink_port}"
        env["OTEL_EXPORTER_OTLP_INSECURE"] = "true"
        env["OTEL_TRACES_SAMPLER"] = "parentbased_traceidratio"
        env["OTEL_TRACES_SAMPLER_ARG"] = os.environ.get("BENCH_TRACE_SAMPLE", "0.1")
        sidecars = (("otlp-sink", python_module("bench.otlp_sink", "--port", str(sink_port))),)
    return System(
        "gateway-telemetry" if telemetry else "gateway",
        "llm-gateway (telemetry on)" if telemetry else "llm-gateway",
        "grpc",
        command,
        env,
        readiness="grpc-health",
        address=f"127.0.0.1:{port}",
        model="chat",
        sidecars=sidecars,
    )


def gateway_http(port: int, upstream_base: str) -> System:
    """llm-gateway's OpenAI-compatible HTTP facade on bench/gateway.yaml: HTTP to HTTP, the
    same path as the LiteLLM proxy and Portkey (its gRPC port is open but not called)."""
    command = (
        str(GATEWAY_BIN),
        "serve",
        "--config",
        str(BENCH_DIR / "gateway.yaml"),
        "--listen",
        f"127.0.0.1:{free_port()}",
        "--http-listen",
        f"127.0.0.1:{port}",
    )
    return System(
        "gateway-http",
        "llm-gateway (HTTP)",
        "http",
        command,
        {"BENCH_UPSTREAM_BASE": upstream_base, "BENCH_METRICS_LISTEN": ""},
        address=f"http://127.0.0.1:{port}/v1",
        model="chat",
    )


#: The Redis rows: key, label, and the latency added each way to Redis (0: local).
REDIS_ROWS = {
    "gateway-redis": ("llm-gateway (state in Redis)", 0.0),
    "gateway-redis-20ms": ("llm-gateway (Redis 20 ms away)", 20.0),
}


def gateway_redis(key: str, port: int, upstream_base: str) -> System:
    """llm-gateway on bench/gateway-redis.yaml, with a redis-server of its own (and for the
    "20 ms away" row a delay proxy in front of it) as sidecars."""
    label, delay_ms = REDIS_ROWS[key]
    redis_port = free_port()
    redis = shutil.which("redis-server") or "redis-server"
    sidecars: list[tuple[str, tuple[str, ...]]] = [
        (
            f"{key}-redis",
            (redis, "--bind", "127.0.0.1", "--port", str(redis_port), "--save", "",
             "--appendonly", "no"),
        )
    ]  # fmt: skip
    url_port = redis_port
    if delay_ms:
        url_port = free_port()
        sidecars.append(
            (
                f"{key}-delay",
                python_module(
                    "bench.delay_proxy",
                    "--listen-port", str(url_port),
                    "--target-port", str(redis_port),
                    "--delay-ms", str(delay_ms),
                ),
            )
        )  # fmt: skip
    memory = gateway(port, upstream_base)
    command = tuple(
        str(BENCH_DIR / "gateway-redis.yaml") if part.endswith("gateway.yaml") else part
        for part in memory.command
    )
    env = {**memory.env, "BENCH_REDIS_URL": f"redis://127.0.0.1:{url_port}/0"}
    return replace(memory, key=key, label=label, command=command, env=env, sidecars=tuple(sidecars))


def litellm_proxy(port: int, upstream_base: str) -> System:
    """The LiteLLM proxy (bench/.venv-litellm) on bench/litellm-config.yaml."""
    command = (
        str(LITELLM_BIN),
        "--config",
        str(BENCH_DIR / "litellm-config.yaml"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--num_workers",
        "1",
        "--telemetry",
        "False",
        "--log_config",
        str(BENCH_DIR / "litellm-log.yaml"),
    )
    env = {
        "BENCH_UPSTREAM_BASE": upstream_base,
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "LITELLM_LOG": "ERROR",
        "LITELLM_TELEMETRY": "False",
        "DISABLE_ADMIN_UI": "True",
    }
    return System(
        "litellm", "LiteLLM proxy", "http", command, env, address=f"http://127.0.0.1:{port}/v1"
    )


def portkey(port: int, upstream_base: str) -> System:
    """The Portkey gateway (bench/node_modules), told per request where the upstream is."""
    node = shutil.which("node") or "node"
    command = (node, str(PORTKEY_JS), f"--port={port}", "--headless")
    headers = {
        "x-portkey-provider": "openai",
        "x-portkey-custom-host": upstream_base,
        # The fake upstream ignores it; the openai provider insists on one.
        "Authorization": "Bearer bench-no-key",
    }
    return System(
        "portkey",
        "Portkey gateway",
        "http",
        command,
        {"NODE_ENV": "production"},
        address=f"http://127.0.0.1:{port}/v1",
        headers=headers,
    )


def unavailable_reason(system: System) -> str:
    """Why a system cannot run here, or ``""`` when it can."""
    if system.key.startswith("gateway"):
        if not GATEWAY_BIN.exists():
            return f"{GATEWAY_BIN} is missing (make install)"
        probe = subprocess.run(
            [str(GATEWAY_BIN), "serve", "--help"], capture_output=True, timeout=60, check=False
        )
        if probe.returncode != 0:
            lines = (probe.stderr or probe.stdout).decode(errors="replace").strip().splitlines()
            return "llm-gateway serve is not available: " + (lines[-1] if lines else "")
    if system.key in REDIS_ROWS and not shutil.which("redis-server"):
        return "redis-server is not on PATH (make redis-server)"
    if system.key == "litellm" and not LITELLM_BIN.exists():
        return f"{LITELLM_BIN} is missing (make bench installs it)"
    if system.key == "portkey":
        if not PORTKEY_JS.exists():
            return f"{PORTKEY_JS} is missing (make bench runs npm ci)"
        if not shutil.which("node"):
            return "node is not on PATH"
    return ""


async def _grpc_health(address: str, service: str) -> bool:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        answer = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=1.0)
        return bool(answer.status == health_pb2.HealthCheckResponse.SERVING)


async def _port_open(address: str) -> bool:
    host, _, port = address.removeprefix("http://").split("/")[0].rpartition(":")
    try:
        _, writer = await asyncio.open_connection(host, int(port))
    except OSError:
        return False
    writer.close()
    return True


async def _answers(system: System) -> bool:
    caller = system.caller()
    try:
        await caller.chat()
    finally:
        await caller.aclose()
    return True


async def wait_ready(system: System, managed: Managed | None) -> float:
    """Poll until the system serves; return seconds since its process started."""
    check: Callable[[], Awaitable[bool]]
    if system.readiness == "grpc-health":

        async def check() -> bool:
            return await _grpc_health(system.address, GATEWAY_HEALTH_SERVICE)

    else:

        async def check() -> bool:
            return await _answers(system)

    start = managed.started_at if managed else time.perf_counter()
    deadline = start + _READY_TIMEOUT_S
    last_error = ""
    while time.perf_counter() < deadline:
        if managed is not None and not managed.alive():
            raise RuntimeError(f"{system.key} exited early:\n{managed.log_tail()}")
        # Only probe for real once the port accepts connections: cheap, and it keeps
        # failed gRPC channels (with their reconnect backoff) out of the measurement.
        if await _port_open(system.address):
            try:
                if await check():
                    return time.perf_counter() - start
            except (grpc.aio.AioRpcError, aiohttp.ClientError, OSError, ValueError) as exc:
                last_error = f"{type(exc).__name__}: {exc}"[:300]
        await asyncio.sleep(_POLL_S)
    tail = managed.log_tail() if managed else ""
    raise TimeoutError(
        f"{system.key} not serving after {_READY_TIMEOUT_S:.0f} s: {last_error}\n{tail}"
    )
