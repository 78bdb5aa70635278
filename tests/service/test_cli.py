"""The console script: check-config, serve with workers, SIGHUP reload, SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from llmgateway.v1 import chat_pb2, gateway_service_pb2_grpc, models_pb2
from tests.fakes import Behaviour, FakeOpenAI
from tests.service.conftest import Running, config_for

CLI = [sys.executable, "-m", "llm_gateway_server"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_check_config_prints_routes_and_disabled_providers(tmp_path: Path) -> None:
    path = tmp_path / "gw.yaml"
    path.write_text(
        "providers:\n"
        "  local: {kind: openai_compatible, api_base: 'http://127.0.0.1:1/v1', locality: local}\n"
        "  openai: {kind: openai, api_key_env: LLMGW_TEST_UNSET_KEY, locality: cloud}\n"
        "routes:\n  chat: {targets: [{provider: local, model: a}, {provider: openai, model: b}]}\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "LLMGW_TEST_UNSET_KEY"}
    done = subprocess.run(
        [*CLI, "check-config", str(path)], capture_output=True, text=True, env=env, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "chat: task=chat" in done.stdout
    assert "openai: LLMGW_TEST_UNSET_KEY is not set" in done.stdout


def test_check_config_names_each_bad_key(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "server: {listen: nowhere}\n"
        "providers: {p: {kind: openai_compatible, locality: moon, api_base: 'http://x/v1'}}\n"
        "routes: {chat: {targets: []}}\n"
    )
    done = subprocess.run(
        [*CLI, "check-config", str(path)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert any("server.listen" in line for line in lines)
    assert any("providers.p.locality" in line for line in lines)
    assert any("routes.chat.targets" in line for line in lines)
    assert "Traceback" not in done.stderr


async def _wait_serving(address: str, timeout: float = 20.0) -> None:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            try:
                answer = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1)
                if answer.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.aio.AioRpcError:
                pass
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"{address} not SERVING")
            await asyncio.sleep(0.1)


async def _chat_models_become(address: str, wanted: set[str], timeout: float = 10.0) -> set[str]:
    """Poll ListModels (new connections each time) until route chat has ``wanted`` targets."""
    seen: set[str] = set()
    deadline = asyncio.get_running_loop().time() + timeout
    while seen != wanted and asyncio.get_running_loop().time() < deadline:
        async with grpc.aio.insecure_channel(address) as channel:
            stub = gateway_service_pb2_grpc.GatewayServiceStub(channel)
            models = await stub.ListModels(models_pb2.ListModelsRequest(), timeout=5)
        seen = {t.model for r in models.routes if r.name == "chat" for t in r.targets}
        if seen != wanted:
            await asyncio.sleep(0.1)
    return seen


async def test_workers_share_one_port_and_sighup_reloads(
    upstream: FakeOpenAI, tmp_path: Path
) -> None:
    port = _free_port()
    path = tmp_path / "gw.yaml"
    path.write_text(config_for(upstream.base_url).replace("'127.0.0.1:0'", f"'127.0.0.1:{port}'"))
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen(
        [*CLI, "serve", "--config", str(path), "--workers", "2"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        address = f"127.0.0.1:{port}"
        await _wait_serving(address)
        for _ in range(50):
            started = (tmp_path / "serve.log").read_text()
            if "(worker 0)" in started and "(worker 1)" in started:
                break
            await asyncio.sleep(0.1)
        text = (tmp_path / "serve.log").read_text()
        assert "(worker 0)" in text
        assert "(worker 1)" in text
        request = chat_pb2.ChatRequest(
            messages=[chat_pb2.Message(role=chat_pb2.ROLE_USER, content="hi")]
        )
        for _ in range(4):  # new channels, so the kernel spreads them over both workers
            async with grpc.aio.insecure_channel(address) as channel:
                answer = await gateway_service_pb2_grpc.GatewayServiceStub(channel).Chat(
                    request, timeout=10
                )
                assert answer.model == "m1"
        path.write_text(path.read_text().replace("model: m1", "model: m9"))
        proc.send_signal(signal.SIGHUP)
        assert await _chat_models_become(address, {"m9"}) == {"m9"}
    finally:
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(proc.wait, 30)
        log.close()
    assert code == 0


async def _run_cli(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *CLI, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode(), err.decode()


async def test_chat_and_models_clients(gateway: Running, upstream: FakeOpenAI) -> None:
    upstream.behaviour = Behaviour(content="streamed to the terminal", reasoning="hmm")
    code, out, err = await _run_cli(
        "chat", "--target", gateway.address, "--show-reasoning", "Hello", "there"
    )
    assert code == 0, err
    assert out.strip() == "streamed to the terminal"
    assert "hmm" in err
    assert "local/m1 via chat" in err
    assert upstream.last_request.json["messages"][-1]["content"] == "Hello there"
    code, out, err = await _run_cli("models", "--target", gateway.address)
    assert code == 0, err
    assert "chat  task=chat" in out
    assert "local/m1" in out
    code, _, err = await _run_cli("chat", "--target", gateway.address, "--model", "nope", "x")
    assert code == 1
    assert "NOT_FOUND" in err


async def test_a_watched_config_file_reloads(upstream: FakeOpenAI, tmp_path: Path) -> None:
    port = _free_port()
    path = tmp_path / "gw.yaml"
    text = config_for(upstream.base_url).replace("'127.0.0.1:0'", f"'127.0.0.1:{port}'")
    path.write_text(text.replace("drain_delay_s: 0.5}", "drain_delay_s: 0.5, watch_config: true}"))
    log_path = tmp_path / "serve.err"
    with log_path.open("w") as err:
        proc = subprocess.Popen(
            [*CLI, "serve", "--config", str(path)], stdout=subprocess.DEVNULL, stderr=err
        )
    try:
        address = f"127.0.0.1:{port}"
        await _wait_serving(address)
        path.write_text(path.read_text().replace("model: m1", "model: m7"))
        assert await _chat_models_become(address, {"m7"}) == {"m7"}
    finally:
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(proc.wait, 30)
    assert code == 0
    # The configured log format is in force: every line is one JSON object.
    lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
    assert any("serving on port" in line["message"] for line in lines)
    assert any("config reloaded" in line["message"] for line in lines)


def _check(tmp_path: Path, text: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "gw.yaml"
    path.write_text(text)
    return subprocess.run(
        [*CLI, "check-config", str(path)], capture_output=True, text=True, check=False
    )


def test_a_yaml_syntax_error_names_the_file_line_and_column(tmp_path: Path) -> None:
    # `providers` is indented one space too far: the fault is line 3, column 2.
    done = _check(tmp_path, "server:\n  listen: '127.0.0.1:1'\n providers: {}\n")
    assert done.returncode == 1
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"{tmp_path / 'gw.yaml'}: line 3, column 2: not valid YAML")
    assert "Traceback" not in done.stderr


def test_a_duplicate_key_or_an_unclosed_quote_points_at_the_fault(tmp_path: Path) -> None:
    base = (
        "providers:\n  p: {kind: openai_compatible, api_base: 'http://x/v1', locality: local}\n"
        "routes:\n  chat: {targets: [{provider: p, model: m}]}\n"
    )
    done = _check(tmp_path, base + "providers: {}\n")  # a second section would replace the first
    assert done.returncode == 1
    assert (
        "line 5, column 1: not valid YAML: duplicate key 'providers' (first given at line 1)"
        in (done.stderr)
    )
    done = _check(tmp_path, base.replace("'http://x/v1'", "'http://x/v1"))
    assert done.returncode == 1
    # The scanner notices at the end of the file; the quote it was reading is named too.
    assert "while scanning a quoted scalar, from line 2, column" in done.stderr


def test_an_empty_config_or_one_without_routes_is_an_error(tmp_path: Path) -> None:
    for text in ("", "# nothing yet\n", "providers: {}\n", "routes: {}\n"):
        done = _check(tmp_path, text)
        assert done.returncode == 1, (text, done.stdout)
        assert "OK" not in done.stdout
        assert "routes" in done.stderr, done.stderr


def test_an_unknown_key_suggests_the_closest_known_one(tmp_path: Path) -> None:
    done = _check(
        tmp_path,
        "sever: {}\n"
        "providers: {p: {kind: openai_compatible, api_bse: 'http://x/v1', locality: local}}\n"
        "routes: {chat: {targets: [{provider: p, model: m, weigth: 2}]}}\n",
    )
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert any("sever: unknown key (did you mean server?)" in line for line in lines)
    assert any(
        "providers.p.api_bse: unknown key (did you mean api_base?)" in line for line in lines
    )
    assert any(
        "routes.chat.targets[0].weigth: unknown key (did you mean weight?)" in line
        for line in lines
    )


def test_a_type_error_is_reported_once_without_follow_on_errors(tmp_path: Path) -> None:
    done = _check(
        tmp_path,
        "providers: {p: {kind: openai_compatible, api_base: 'http://x/v1', locality: local}}\n"
        "routes: {chat: {targets: [{provider: p, model: m, tier: first}]}}\n",
    )
    assert done.returncode == 1
    (line,) = done.stderr.strip().splitlines()
    assert "routes.chat.targets[0].tier: Input should be a valid integer" in line


def test_serve_on_a_port_in_use_says_which_address_and_key(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        path = tmp_path / "gw.yaml"
        for metrics, args, key in (
            ("", ["--listen", f"127.0.0.1:{port}"], "--listen"),
            (f"127.0.0.1:{port}", [], "telemetry.metrics_listen"),
        ):
            path.write_text(
                "server: {listen: '127.0.0.1:0'}\n"
                f"telemetry: {{metrics_listen: '{metrics}'}}\n"
                "providers: {p: {kind: openai_compatible, api_base: 'http://127.0.0.1:9/v1', locality: local}}\n"
                "routes: {chat: {targets: [{provider: p, model: m}]}}\n"
            )
            done = subprocess.run(
                [*CLI, "serve", "--config", str(path), *args],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert done.returncode == 1
            (line,) = done.stderr.strip().splitlines()
            assert f"cannot listen on 127.0.0.1:{port} ({key})" in line
            assert "Traceback" not in done.stderr


async def test_a_reload_of_a_truncated_file_keeps_the_old_config(
    upstream: FakeOpenAI, tmp_path: Path
) -> None:
    port = _free_port()
    path = tmp_path / "gw.yaml"
    path.write_text(config_for(upstream.base_url).replace("'127.0.0.1:0'", f"'127.0.0.1:{port}'"))
    log_path = tmp_path / "serve.err"
    with log_path.open("w") as err:
        proc = subprocess.Popen(
            [*CLI, "serve", "--config", str(path)], stdout=subprocess.DEVNULL, stderr=err
        )
    try:
        address = f"127.0.0.1:{port}"
        await _wait_serving(address)
        path.write_text("")  # an editor mid-save, a ConfigMap swap
        proc.send_signal(signal.SIGHUP)
        for _ in range(200):
            if "reload rejected" in log_path.read_text():
                break
            await asyncio.sleep(0.05)
        assert await _chat_models_become(address, {"m1"}) == {"m1"}
    finally:
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(proc.wait, 30)
    assert code == 0
    rejected = [
        json.loads(line)["message"]
        for line in log_path.read_text().splitlines()
        if "reload rejected" in line
    ]
    assert rejected and "the file is empty" in rejected[0]
