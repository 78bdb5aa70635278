"""Soak: mixed traffic with faults against a real gateway process for N minutes.

A gateway (``python -m llm_gateway_server serve``) on loopback in front of two fake upstreams:
``good`` answers, ``bad`` injects a different fault into each request (hangs, 5xx echoing the
request, 429, dropped and cut connections, garbage, oversized bodies and SSE lines, finished
streams held open). A fixed number of workers send unary, streamed, cancelled and
short-deadline calls and embeddings; every interval the gateway's RSS and open fds are
printed, and at the end the log lines by level and any traceback.

    make soak                    # SOAK_MINUTES=5 by default
    python -m tests.soak.run --minutes 1 --workers 8 --interval 10

Bounded: ``--workers`` calls in flight at most, each with a deadline, for ``--minutes``;
loopback only. Not a test (``make test`` does not run it): memory and fd counts over time
are for a person to read.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import dataclasses
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from llmgateway.v1 import chat_pb2, embed_pb2, gateway_service_pb2_grpc, models_pb2
from tests.fakes import Behaviour, FakeOpenAI, Fault

#: The soak's configured secrets and prompt marker: none may reach Health or the log.
_SECRETS = ("sk-soak-key-0123456789abcdef", "soak-header-secret-42", "soak prompt")
_FAULTS = (
    Behaviour(fault=Fault.HANG, hang_s=5.0),
    Behaviour(fault=Fault.HTTP_ERROR, status=500, echo_request=True),
    Behaviour(fault=Fault.HTTP_ERROR, status=400, echo_request=True),
    Behaviour(fault=Fault.RATE_LIMIT, retry_after="1"),
    Behaviour(fault=Fault.DROP),
    Behaviour(fault=Fault.CUT_STREAM, cut_after=3),
    Behaviour(fault=Fault.MALFORMED),
    Behaviour(fault=Fault.TRUNCATE, cut_after=3),
    Behaviour(oversize_bytes=4 * 1024 * 1024),
    Behaviour(hold_open=True, send_done=False),
    Behaviour(first_token_delay_s=0.3, chunk_delay_s=0.01),
    Behaviour(),
)


class FaultyUpstream(FakeOpenAI):
    """A FakeOpenAI that picks a random fault for every request."""

    def __init__(self, seed: int) -> None:
        super().__init__()
        self._rng = random.Random(seed)

    def _next_behaviour(self) -> Behaviour:
        return dataclasses.replace(self._rng.choice(_FAULTS))


def _config(good: str, bad: str) -> str:
    common = (
        "locality: local, retry: {max_attempts: 2, base_delay_s: 0.01, max_delay_s: 0.2},"
        " probe: {enabled: false}, breaker: {failure_threshold: 3, reset_timeout_s: 1}"
    )
    return (
        "server: {listen: '127.0.0.1:0', shutdown_grace_s: 2, drain_delay_s: 0}\n"
        "providers:\n"
        f"  good: {{kind: openai_compatible, api_base: '{good}', timeout_s: 10, {common}}}\n"
        f"  bad: {{kind: openai_compatible, api_base: '{bad}', timeout_s: 2, {common},"
        " max_response_bytes: 1048576, max_event_bytes: 65536,"
        " api_key_env: SOAK_KEY, headers: {X-Soak-Token: '${SOAK_HEADER}'}}\n"
        "routes:\n"
        "  mixed: {targets: [{provider: bad, model: m}, {provider: good, model: m}]}\n"
        "  badonly: {targets: [{provider: bad, model: m}]}\n"
        "  embedding: {task: embedding, targets: [{provider: bad, model: e},"
        " {provider: good, model: e}]}\n"
        "telemetry: {metrics_listen: '', log_format: json}\n"
    )


@dataclass
class Tally:
    """Outcomes of the calls made so far."""

    calls: int = 0
    outcomes: collections.Counter[str] = field(default_factory=collections.Counter)


def _status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key):
            return int(line.split()[1])
    return 0


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


async def _one_call(
    stub: gateway_service_pb2_grpc.GatewayServiceStub, rng: random.Random, tally: Tally
) -> None:
    kind = rng.choice(("chat", "stream", "cancel", "deadline", "embed", "badonly"))
    route = "badonly" if kind == "badonly" else "mixed"
    message = chat_pb2.Message(role=chat_pb2.ROLE_USER, content=f"soak prompt {rng.random()}")
    try:
        if kind in ("chat", "badonly", "deadline"):
            timeout = 0.05 if kind == "deadline" else 15
            await stub.Chat(chat_pb2.ChatRequest(model=route, messages=[message]), timeout=timeout)
        elif kind == "embed":
            await stub.Embed(embed_pb2.EmbedRequest(inputs=["a", "b"]), timeout=15)
        else:
            call = stub.StreamChat(
                chat_pb2.StreamChatRequest(model=route, messages=[message]), timeout=15
            )
            async for _ in call:
                if kind == "cancel":
                    call.cancel()
                    break
        tally.outcomes[f"{kind}:OK"] += 1
    except grpc.aio.AioRpcError as exc:
        tally.outcomes[f"{kind}:{exc.code().name}"] += 1
    except asyncio.CancelledError:
        if kind != "cancel":
            raise
        tally.outcomes[f"{kind}:CANCELLED"] += 1
    tally.calls += 1


async def _worker(
    stub: gateway_service_pb2_grpc.GatewayServiceStub, seed: int, tally: Tally, stop: float
) -> None:
    rng = random.Random(seed)
    while time.monotonic() < stop:
        await _one_call(stub, rng, tally)


def _start_gateway(config: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    env = {
        **os.environ,
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "SOAK_KEY": _SECRETS[0],
        "SOAK_HEADER": _SECRETS[1],
    }
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "llm_gateway_server", "serve", "--config", str(config)],
            stdout=subprocess.PIPE,
            stderr=out,
            env=env,
        )
    assert proc.stdout is not None
    line = proc.stdout.readline().decode()
    if "serving on" not in line:
        proc.kill()
        raise SystemExit(f"gateway did not start:\n{log.read_text()}")
    return proc, line.split("serving on ")[1].split()[0]


def _log_summary(log: Path) -> str:
    levels: collections.Counter[str] = collections.Counter()
    tracebacks = 0
    for line in log.read_text(errors="replace").splitlines():
        if not line.startswith("{"):
            continue
        with contextlib.suppress(ValueError):
            record = json.loads(line)
            levels[str(record.get("level"))] += 1
            if "Traceback" in line:
                tracebacks += 1
    text = log.read_text(errors="replace")
    for secret in _SECRETS:
        if secret in text:
            levels[f"LEAKED {secret!r}"] += 1
    return f"log lines by level: {dict(levels)}; with a traceback: {tracebacks}"


async def soak(minutes: float, workers: int, interval: float, keep_log: Path | None) -> int:
    """Run the soak; return 1 if the gateway died, else 0."""
    async with FakeOpenAI(Behaviour(chunk_delay_s=0.005)) as good, FaultyUpstream(7) as bad:
        with tempfile.TemporaryDirectory(prefix="llm-gateway-soak-") as tmp:
            config, log = Path(tmp) / "soak.yaml", Path(tmp) / "gateway.log"
            config.write_text(_config(good.base_url, bad.base_url))
            proc, address = await asyncio.to_thread(_start_gateway, config, log)
            tally = Tally()
            started = time.monotonic()
            stop = started + minutes * 60
            print(f"soak: gateway pid {proc.pid} on {address}, {workers} workers, {minutes} min")
            try:
                async with grpc.aio.insecure_channel(address) as channel:
                    stub = gateway_service_pb2_grpc.GatewayServiceStub(channel)
                    tasks = [
                        asyncio.create_task(_worker(stub, i, tally, stop)) for i in range(workers)
                    ]
                    while not all(t.done() for t in tasks):
                        await asyncio.wait(tasks, timeout=interval)
                        if proc.poll() is not None:
                            print(f"soak: the gateway exited with {proc.returncode}")
                            for task in tasks:
                                task.cancel()
                            await asyncio.gather(*tasks, return_exceptions=True)
                            return 1
                        health = await stub.Health(models_pb2.HealthRequest(), timeout=5)
                        leaked = [v for v in _SECRETS if v in str(health)]
                        if leaked:
                            tally.outcomes[f"HEALTH LEAKED {leaked}"] += 1
                        print(
                            f"t={time.monotonic() - started:6.0f}s calls={tally.calls:6d}"
                            f" health={health.ByteSize():5d}B"
                            f" rss={_status_kb(proc.pid, 'VmRSS:') / 1024:6.1f}MB"
                            f" peak={_status_kb(proc.pid, 'VmHWM:') / 1024:6.1f}MB"
                            f" fds={_fds(proc.pid):4d}"
                            f" upstream_conns={good.open_connections + bad.open_connections}",
                            flush=True,
                        )
                    await asyncio.gather(*tasks)
                await asyncio.sleep(1.0)  # let pooled connections settle before the last count
                print(
                    f"end: rss={_status_kb(proc.pid, 'VmRSS:') / 1024:.1f}MB fds={_fds(proc.pid)}"
                )
                print("outcomes:", dict(sorted(tally.outcomes.items())))
            finally:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
                    await asyncio.to_thread(proc.wait, 15)
                if proc.stdout is not None:
                    proc.stdout.close()
                print(_log_summary(log))
                if keep_log is not None:
                    keep_log.write_bytes(log.read_bytes())
                    print(f"gateway log kept in {keep_log}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=float(os.environ.get("SOAK_MINUTES", "5")))
    parser.add_argument("--workers", type=int, default=int(os.environ.get("SOAK_WORKERS", "16")))
    parser.add_argument(
        "--interval", type=float, default=float(os.environ.get("SOAK_INTERVAL_S", "15"))
    )
    parser.add_argument(
        "--keep-log",
        type=Path,
        default=Path(
            os.environ.get("SOAK_LOG", Path(tempfile.gettempdir()) / "llm-gateway-soak.log")
        ),
        help="copy the gateway's log here at the end (default: $SOAK_LOG or the temp dir)",
    )
    args = parser.parse_args()
    if not 0 < args.minutes <= 24 * 60 or not 1 <= args.workers <= 512:
        parser.error("--minutes must be in (0, 1440] and --workers in [1, 512]")
    return asyncio.run(soak(args.minutes, args.workers, args.interval, args.keep_log))


if __name__ == "__main__":
    sys.exit(main())
