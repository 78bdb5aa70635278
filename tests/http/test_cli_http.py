"""``llm-gateway serve --http-listen``: the facade in the served process, and ``http.listen``."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path

import openai
import pytest

from llm_gateway_server.config.loader import ConfigError, parse_config
from llm_gateway_server.config.model import GatewayConfig
from tests.fakes import FakeOpenAI
from tests.http.conftest import http_config

CLI = [sys.executable, "-m", "llm_gateway_server"]


async def _http_address(log: Path, proc: subprocess.Popen[bytes]) -> str:
    for _ in range(300):
        for line in log.read_text().splitlines():
            if line.startswith("llm-gateway: http on "):
                return line.removeprefix("llm-gateway: http on ").strip()
        assert proc.poll() is None, log.read_text()
        await asyncio.sleep(0.1)
    raise AssertionError(f"no http line in: {log.read_text()}")


async def test_serve_with_http_listen(upstream: FakeOpenAI, tmp_path: Path) -> None:
    path = tmp_path / "gw.yaml"
    # The config leaves HTTP off; the flag turns it on.
    path.write_text(http_config(upstream).replace("http: {listen: '127.0.0.1:0'}\n", ""))
    log_path = tmp_path / "serve.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [*CLI, "serve", "--config", str(path), "--http-listen", "127.0.0.1:0"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        address = await _http_address(log_path, proc)
        async with openai.AsyncOpenAI(
            base_url=f"http://{address}/v1", api_key="x", max_retries=0
        ) as client:
            answer = await client.chat.completions.create(
                model="chat", messages=[{"role": "user", "content": "hi"}]
            )
            models = [m.id async for m in client.models.list()]
        assert answer.choices[0].message.content == "Hello from the fake."
        assert models == ["chat", "embedding"]
    finally:
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(proc.wait, 30)
    assert code == 0


async def test_empty_http_listen_turns_it_off(upstream: FakeOpenAI, tmp_path: Path) -> None:
    path = tmp_path / "gw.yaml"
    path.write_text(http_config(upstream))
    log_path = tmp_path / "serve.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [*CLI, "serve", "--config", str(path), "--http-listen", ""],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        for _ in range(300):
            if "serving on" in log_path.read_text():
                break
            assert proc.poll() is None, log_path.read_text()
            await asyncio.sleep(0.1)
        assert "serving on" in log_path.read_text()
        assert "http on" not in log_path.read_text()
    finally:
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(proc.wait, 30)
    assert code == 0


def test_bad_http_listen_flag_is_refused() -> None:
    done = subprocess.run(
        [*CLI, "serve", "--http-listen", "nowhere"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert "--http-listen" in done.stderr


def test_http_is_off_unless_configured() -> None:
    assert GatewayConfig().http.listen == ""
    with pytest.raises(ConfigError) as caught:
        parse_config("http: {listen: 'localhost'}")
    assert any(line.startswith("http.listen") for line in caught.value.errors)


async def test_workers_share_the_http_port(upstream: FakeOpenAI, tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    path = tmp_path / "gw.yaml"
    # --workers needs fixed ports: gRPC on one, HTTP on the other.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        grpc_port = sock.getsockname()[1]
    path.write_text(
        http_config(upstream).replace(
            "listen: '127.0.0.1:0', allow", f"listen: '127.0.0.1:{grpc_port}', allow"
        )
    )
    log_path = tmp_path / "serve.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [
                *CLI,
                "serve",
                "--config",
                str(path),
                "--workers",
                "2",
                "--http-listen",
                f"127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        for _ in range(600):
            if log_path.read_text().count("llm-gateway: http on") == 2:
                break
            assert proc.poll() is None, log_path.read_text()
            await asyncio.sleep(0.1)
        assert log_path.read_text().count(f"llm-gateway: http on 127.0.0.1:{port}") == 2
        for _ in range(4):  # a new connection each time: the kernel spreads them
            async with openai.AsyncOpenAI(
                base_url=f"http://127.0.0.1:{port}/v1", api_key="x", max_retries=0
            ) as client:
                answer = await client.chat.completions.create(
                    model="chat", messages=[{"role": "user", "content": "hi"}]
                )
                assert answer.choices[0].message.content
    finally:
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(proc.wait, 30)
    assert code == 0
