"""The `make run` launcher's failure paths: one actionable line, exit 1, nothing left running."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest

from llm_gateway_server.config.loader import parse_config
from llm_gateway_server.launcher import bundled_model
from llmgateway.v1 import chat_pb2, gateway_service_pb2_grpc

from .llama import LlamaPaths

pytestmark = pytest.mark.e2e

LAUNCHER = [sys.executable, "-m", "llm_gateway_server.launcher"]


def _config(grpc_port: int, bundled_port: int) -> str:
    return (
        f"server: {{listen: '127.0.0.1:{grpc_port}', drain_delay_s: 0}}\n"
        "providers:\n"
        f"  bundled: {{kind: openai_compatible, api_base: 'http://127.0.0.1:{bundled_port}/v1',"
        " locality: local}\n"
        "routes:\n  chat: {targets: [{provider: bundled, model: smol}]}\n"
        "telemetry: {metrics_listen: ''}\n"
    )


def _launch(
    tmp_path: Path, llama_paths: LlamaPaths, model: Path, config: str
) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "gw.yaml"
    path.write_text(config)
    return subprocess.run(
        [
            *LAUNCHER,
            *("--config", str(path), "--llama-server", str(llama_paths.server_bin)),
            *("--model", str(model), "--llama-log", str(tmp_path / "llama.log")),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _listening() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_bundled_model_is_found_by_its_provider_on_loopback() -> None:
    snapshot = parse_config(_config(1, 8081), env={})
    found = bundled_model(snapshot)
    assert found is not None
    assert (found.host, found.port, found.alias) == ("127.0.0.1", 8081, "smol")
    remote = _config(1, 8081).replace("127.0.0.1:8081", "gpu-box:8081")
    assert bundled_model(parse_config(remote, env={})) is None


def test_the_bundled_models_port_in_use_is_one_line(
    tmp_path: Path, llama_paths: LlamaPaths, bundled_model_path: Path
) -> None:
    with _listening() as taken:
        port = taken.getsockname()[1]
        done = _launch(tmp_path, llama_paths, bundled_model_path, _config(_free_port(), port))
    assert done.returncode == 1
    (line,) = done.stderr.strip().splitlines()
    assert f"127.0.0.1:{port} (providers.bundled.api_base) is in use" in line
    assert "llama-server pid" not in done.stdout  # nothing was started


def test_the_gateways_port_in_use_stops_the_bundled_model_too(
    tmp_path: Path, llama_paths: LlamaPaths, bundled_model_path: Path
) -> None:
    bundled_port = _free_port()
    with _listening() as taken:
        port = taken.getsockname()[1]
        done = _launch(tmp_path, llama_paths, bundled_model_path, _config(port, bundled_port))
    assert done.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port} (server.listen)" in done.stderr
    assert "Traceback" not in done.stderr
    assert "llama-server pid" in done.stdout
    with socket.socket() as sock:  # the bundled model was stopped: its port is free again
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", bundled_port))


def test_a_bad_config_is_reported_before_anything_starts(
    tmp_path: Path, llama_paths: LlamaPaths, bundled_model_path: Path
) -> None:
    done = _launch(tmp_path, llama_paths, bundled_model_path, "routes: {}\n")
    assert done.returncode == 1
    assert "routes: none defined" in done.stderr
    assert "llama-server pid" not in done.stdout


def test_a_bundled_model_that_dies_stops_the_gateway_with_its_log(
    tmp_path: Path, llama_paths: LlamaPaths, bundled_model_path: Path
) -> None:
    grpc_port = _free_port()
    path = tmp_path / "gw.yaml"
    path.write_text(_config(grpc_port, _free_port()))
    out_path = tmp_path / "launcher.out"
    with out_path.open("w") as out:
        proc = subprocess.Popen(
            [
                *LAUNCHER,
                *("--config", str(path), "--llama-server", str(llama_paths.server_bin)),
                *("--model", str(bundled_model_path), "--llama-log", str(tmp_path / "llama.log")),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 120
        while "llm-gateway is up" not in out_path.read_text():
            assert proc.poll() is None, out_path.read_text()
            assert time.monotonic() < deadline, out_path.read_text()
            time.sleep(0.2)
        match = re.search(r"llama-server pid (\d+)", out_path.read_text())
        assert match
        os.kill(int(match.group(1)), signal.SIGKILL)
        assert proc.wait(60) == 1
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert "bundled model: llama-server exited with -9" in out_path.read_text()
    with socket.socket() as sock:  # the gateway was stopped too
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", grpc_port))


def _drain_config(grpc_port: int, bundled_port: int) -> str:
    # Streams that run for seconds (EOS ignored), and a drain long enough to wait for them.
    return (
        f"server: {{listen: '127.0.0.1:{grpc_port}', drain_delay_s: 0, shutdown_grace_s: 120}}\n"
        "providers:\n"
        f"  bundled: {{kind: openai_compatible, api_base: 'http://127.0.0.1:{bundled_port}/v1',"
        " locality: local, timeout_s: 300, extra_body: {ignore_eos: true}}\n"
        "routes:\n  chat: {targets: [{provider: bundled, model: smol}]}\n"
        "telemetry: {metrics_listen: ''}\n"
    )


async def _stream_through_ctrl_c(
    tmp_path: Path, llama_paths: LlamaPaths, model: Path, *, presses: int, max_tokens: int
) -> tuple[list[chat_pb2.StreamChatResponse], grpc.aio.AioRpcError | None, int]:
    grpc_port = _free_port()
    path = tmp_path / "gw.yaml"
    path.write_text(_drain_config(grpc_port, _free_port()))
    out_path = tmp_path / "launcher.out"
    with out_path.open("w") as out:
        proc = subprocess.Popen(
            [
                *LAUNCHER,
                *("--config", str(path), "--llama-server", str(llama_paths.server_bin)),
                *("--model", str(model), "--llama-log", str(tmp_path / "llama.log")),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        while "llm-gateway is up" not in out_path.read_text():
            assert proc.poll() is None, out_path.read_text()
            await asyncio.sleep(0.2)
        received: list[chat_pb2.StreamChatResponse] = []
        error = None
        async with grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            call = gateway_service_pb2_grpc.GatewayServiceStub(channel).StreamChat(
                chat_pb2.StreamChatRequest(
                    messages=[chat_pb2.Message(role=chat_pb2.ROLE_USER, content="Tell a story.")],
                    max_tokens=max_tokens,
                ),
                timeout=120,
            )
            received.append(await call.read())
            proc.send_signal(signal.SIGINT)
            if presses == 2:
                # A person's second Ctrl-C comes after the first took effect (two signals sent
                # at once are one signal to the kernel).
                while "shutting down" not in out_path.read_text():
                    await asyncio.sleep(0.05)
                proc.send_signal(signal.SIGINT)
            try:
                while (message := await call.read()) is not grpc.aio.EOF:
                    received.append(message)
            except grpc.aio.AioRpcError as exc:
                error = exc
        code = await asyncio.to_thread(proc.wait, 120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    return received, error, code


@pytest.mark.timeout(240)
async def test_ctrl_c_lets_a_stream_in_flight_finish(
    tmp_path: Path, llama_paths: LlamaPaths, bundled_model_path: Path
) -> None:
    received, error, code = await _stream_through_ctrl_c(
        tmp_path, llama_paths, bundled_model_path, presses=1, max_tokens=48
    )
    assert error is None
    summary = received[-1].summary
    assert (summary.finish_reason, summary.cut) == (chat_pb2.FINISH_REASON_LENGTH, False)
    assert summary.usage.completion_tokens == 48
    assert code == 0


@pytest.mark.timeout(240)
async def test_a_second_ctrl_c_does_not_wait_for_the_stream(
    tmp_path: Path, llama_paths: LlamaPaths, bundled_model_path: Path
) -> None:
    # Long enough that a fast machine cannot finish it between the two presses.
    received, error, code = await _stream_through_ctrl_c(
        tmp_path, llama_paths, bundled_model_path, presses=2, max_tokens=500
    )
    assert error is not None, "the stream ran to its end"
    assert not received[-1].HasField("summary")
    assert code == 0
