"""A real gateway process (``python -m llm_gateway_server serve``) in front of hostile fakes.

A separate process, so its memory (RSS) and open files are its own, measured from /proc,
and its JSON log lines are the ones an operator would read.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest

from llmgateway.v1 import gateway_service_pb2_grpc, models_pb2

CLI = [sys.executable, "-m", "llm_gateway_server", "serve"]


@dataclass
class GatewayProcess:
    """A started gateway process with a channel and stub connected to it."""

    proc: subprocess.Popen[bytes]
    address: str
    log_path: Path
    channel: grpc.aio.Channel
    stub: gateway_service_pb2_grpc.GatewayServiceStub

    def rss_kb(self) -> int:
        """Resident memory of the gateway process, KiB."""
        return self._status_kb("VmRSS:")

    def peak_rss_kb(self) -> int:
        """The highest resident memory the gateway process has had, KiB."""
        return self._status_kb("VmHWM:")

    def reset_peak_rss(self) -> int:
        """Restart the peak at the current resident memory (Linux ``clear_refs`` 5); return it."""
        Path(f"/proc/{self.proc.pid}/clear_refs").write_text("5")
        return self.rss_kb()

    def _status_kb(self, key: str) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1])
        raise AssertionError(f"no {key}")

    def fds(self) -> int:
        """File descriptors the gateway process holds."""
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_records(self) -> list[dict[str, Any]]:
        """The JSON log lines written so far."""
        records = []
        for line in self.log_text().splitlines():
            if line.startswith("{"):
                records.append(json.loads(line))
        return records

    async def health(self) -> models_pb2.HealthResponse:
        return await self.stub.Health(models_pb2.HealthRequest(), timeout=5)

    async def wait_fds_at_most(self, limit: int, timeout: float = 10.0) -> int:
        """Poll until the process holds at most ``limit`` fds; return the count."""
        deadline = asyncio.get_running_loop().time() + timeout
        count = self.fds()
        while count > limit and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
            count = self.fds()
        return count


def gateway_config(providers: str, routes: str, *, extra: str = "") -> str:
    """A config on 127.0.0.1:0 with JSON logs and no metrics listener."""
    return (
        "server: {listen: '127.0.0.1:0', shutdown_grace_s: 1, drain_delay_s: 0}\n"
        f"providers:\n{providers}"
        f"routes:\n{routes}"
        "telemetry: {metrics_listen: '', log_format: json}\n" + extra
    )


Spawn = Callable[..., Awaitable[GatewayProcess]]


@pytest.fixture
async def spawn_gateway(tmp_path: Path) -> AsyncIterator[Spawn]:
    """Start gateway processes from config text (and extra env); all stopped afterwards."""
    running: list[GatewayProcess] = []

    async def spawn(config_text: str, env: Mapping[str, str] | None = None) -> GatewayProcess:
        index = len(running)
        config = tmp_path / f"gateway-{index}.yaml"
        config.write_text(config_text)
        log_path = tmp_path / f"gateway-{index}.log"
        full_env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", **(env or {})}
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [*CLI, "--config", str(config)],
                stdout=subprocess.PIPE,
                stderr=log,
                env=full_env,
            )
        assert proc.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 30)
        if b"serving on" not in line:
            proc.kill()
            raise AssertionError(f"gateway did not start: {log_path.read_text()}")
        address = line.decode().split("serving on ")[1].split()[0]
        channel = grpc.aio.insecure_channel(address)
        item = GatewayProcess(
            proc, address, log_path, channel, gateway_service_pb2_grpc.GatewayServiceStub(channel)
        )
        running.append(item)
        return item

    yield spawn
    for item in running:
        await item.channel.close()
        if item.proc.poll() is None:
            item.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(asyncio.to_thread(item.proc.wait), 15)
            except TimeoutError:
                item.proc.kill()
        if item.proc.stdout is not None:
            item.proc.stdout.close()


@pytest.fixture(autouse=True)
async def no_leaked_tasks() -> AsyncIterator[None]:
    """Fail a test that leaves an asyncio task running behind it."""
    yield
    await asyncio.sleep(0)
    current = asyncio.current_task()
    leaked = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
    assert not leaked, f"tasks left behind: {leaked}"
