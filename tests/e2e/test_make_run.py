"""`make run` as a new user runs it: the shipped config, the bundled model, the README's commands.

One `make run` for the module, on the shipped default config with only its ports moved to
free ones (and the other local servers pointed at closed ports, so the run is the same on a
machine with Ollama): the README's commands run as written against it, then Ctrl-C (SIGINT
to the foreground process group, as a terminal sends it) must leave no process behind.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from llm_gateway_server.config.defaults import SHIPPED_CONFIG_PATH

from .bundled import BUNDLED_ALIAS
from .llama import REPO_ROOT, LlamaPaths, _make_env

pytestmark = pytest.mark.e2e

README = REPO_ROOT / "README.md"
#: What a README command may start with to be run here (others are make targets or synopses).
RUNNABLE = (".venv/bin/grpcurl ", ".venv/bin/llm-gateway ", "curl ")
#: Commands that serve forever instead of answering.
LONG_RUNNING = (".venv/bin/llm-gateway serve",)
CLOUD_KEYS = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY")
START_TIMEOUT_S = 180.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _descendants(root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found: set[int] = set()
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


@dataclass
class MakeRun:
    """A running `make run` and what it started."""

    proc: subprocess.Popen[bytes]
    log: Path
    grpc_port: int
    bundled_port: int
    metrics_port: int
    started: set[int]
    http_port: int = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def _config(grpc_port: int, bundled_port: int) -> str:
    text = SHIPPED_CONFIG_PATH.read_text()
    moves = {
        '"127.0.0.1:50051"': f'"127.0.0.1:{grpc_port}"',
        "http://127.0.0.1:8081/v1": f"http://127.0.0.1:{bundled_port}/v1",
        # Closed ports: the route falls through them as on a machine with nothing else.
        "http://127.0.0.1:11434/v1": f"http://127.0.0.1:{_free_port()}/v1",
        "http://127.0.0.1:1234/v1": f"http://127.0.0.1:{_free_port()}/v1",
        "http://127.0.0.1:8080/v1": f"http://127.0.0.1:{_free_port()}/v1",
    }
    for old, new in moves.items():
        assert old in text, f"the shipped config no longer has {old}"
        text = text.replace(old, new)
    return text


@pytest.fixture(scope="module")
def make_run(
    llama_paths: LlamaPaths, bundled_model_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MakeRun]:
    tmp = tmp_path_factory.mktemp("make-run")
    grpc_port, bundled_port, metrics_port = _free_port(), _free_port(), _free_port()
    config = tmp / "gateway.yaml"
    config.write_text(_config(grpc_port, bundled_port))
    env = {k: v for k, v in _make_env().items() if k not in CLOUD_KEYS}
    env["LLM_GATEWAY_METRICS_LISTEN"] = f"127.0.0.1:{metrics_port}"
    # The HTTP facade's address, the variable the shipped config reads: a free port here too.
    http_port = _free_port()
    env["LLM_GATEWAY_HTTP_LISTEN"] = f"127.0.0.1:{http_port}"
    log = tmp / "make-run.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                *("make", "--no-print-directory", "-C", str(REPO_ROOT), "run"),
                *(f"CONFIG={config}", f"BUNDLED_MODEL_LOG={tmp / 'llama-server.log'}"),
            ],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # its own process group, as a terminal's foreground job
        )
    run = MakeRun(proc, log, grpc_port, bundled_port, metrics_port, set(), http_port)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while "llm-gateway is up" not in run.output():
            assert proc.poll() is None, f"make run exited with {proc.returncode}:\n{run.output()}"
            assert time.monotonic() < deadline, f"make run not up:\n{run.output()}"
            time.sleep(0.2)
        run.started = _descendants(proc.pid)
        yield run
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def _readme_commands() -> list[str]:
    """The README's shell commands (sh blocks, continuations joined, comments dropped)."""
    commands: list[str] = []
    for block in re.findall(r"```sh\n(.*?)```", README.read_text(), flags=re.DOTALL):
        for command in block.replace("\\\n", " ").splitlines():
            command = command.split("  #", 1)[0].strip()
            if command.startswith(RUNNABLE) and not command.startswith(LONG_RUNNING):
                commands.append(command)
    return commands


def _json_objects(text: str) -> list[dict[str, Any]]:
    """grpcurl's output: one JSON object per message, one after the other."""
    decoder, found, at = json.JSONDecoder(), [], 0
    while at < len(text.rstrip()):
        item, end = decoder.raw_decode(text, at)
        found.append(item)
        at = end + (len(text[end:]) - len(text[end:].lstrip()))
    return found


def _as_run_here(command: str, run: MakeRun) -> list[str]:
    command = command.replace("localhost:50051", run.address)
    argv = shlex.split(command.replace("127.0.0.1:8000", f"127.0.0.1:{run.http_port}"))
    address = run.address
    if argv[0].endswith("llm-gateway") and argv[1] in {"chat", "models"}:
        argv[2:2] = ["--target", address]  # the README's default target, on this test's port
    return argv


# The module's `make run` starts inside the first test's timeout: a gateway and a model on a
# shared 2-core machine; later tests run a few real generations.
@pytest.mark.timeout(START_TIMEOUT_S + 60)
def test_make_run_prints_where_it_listens_and_a_command_to_try(make_run: MakeRun) -> None:
    out = make_run.output()
    assert f"gRPC     {make_run.address}" in out
    assert f"metrics  http://127.0.0.1:{make_run.metrics_port}/metrics" in out
    assert f"{BUNDLED_ALIAS} at http://127.0.0.1:{make_run.bundled_port}/v1" in out
    assert re.search(r"try:  \.venv/bin/llm-gateway chat", out), out


@pytest.mark.timeout(300)
def test_the_readmes_commands_run_as_written(make_run: MakeRun) -> None:
    commands = _readme_commands()
    assert any("/Chat" in c for c in commands) and any("/Embed" in c for c in commands)
    assert any("llm-gateway chat" in c for c in commands)
    for command in commands:
        done = subprocess.run(
            _as_run_here(command, make_run),
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, (command, done.stdout, done.stderr)
        if command.endswith(("/Chat", "/StreamChat")):
            # Nothing else answers here: the bundled model does, with real text.
            answers = _json_objects(done.stdout)
            text = "".join(
                a.get("content", "") + a.get("delta", {}).get("content", "") for a in answers
            )
            assert re.search(r"[A-Za-z]{2,}", text), done.stdout
            last = answers[-1].get("summary", answers[-1])
            assert last["provider"] == "bundled", done.stdout
        if command.endswith(("/Health", "/ListModels")):
            # The bundled model is a target like any other.
            assert '"bundled"' in done.stdout, done.stdout
        if command.endswith("/Embed"):
            assert done.stdout.count('"values"') == 2, done.stdout
        if command.startswith("curl ") and "/chat/completions" in command:
            # The HTTP facade, the same routes: real text from the bundled model, and [DONE].
            assert re.search(r'"content": ?"[^"]*[A-Za-z]{2,}', done.stdout), done.stdout
            assert done.stdout.rstrip().endswith("data: [DONE]"), done.stdout
        if "llm-gateway chat" in command:
            assert re.search(r"[A-Za-z]{2,}", done.stdout), done.stdout
            assert f"bundled/{BUNDLED_ALIAS} via chat" in done.stderr


@pytest.mark.timeout(300)
def test_the_readmes_client_example_runs_as_written(make_run: MakeRun) -> None:
    (example,) = [
        block
        for block in re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)
        if "GatewayClient(" in block
    ]
    code = example.replace('"localhost:50051"', repr(make_run.address))
    code += "\nassert len(vectors) == 2 and all(len(v) > 0 for v in vectors)\n"
    done = subprocess.run(
        [str(REPO_ROOT / ".venv" / "bin" / "python"), "-c", code],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert re.search(r"[A-Za-z]{2,}", done.stdout), done.stdout


def test_every_readme_command_uses_the_venvs_tools() -> None:
    # A bare `grpcurl` or `llm-gateway` is "command not found" after `make run`.
    bare = [
        line
        for block in re.findall(r"```sh\n(.*?)```", README.read_text(), flags=re.DOTALL)
        for line in block.splitlines()
        if line.startswith(("grpcurl ", "llm-gateway "))
    ]
    assert not bare


def test_the_readmes_links_point_at_files_that_exist() -> None:
    text = README.read_text()
    links = re.findall(r"\]\(([^)#]+)\)", text)
    local = [link for link in links if not link.startswith(("http://", "https://"))]
    assert local
    missing = [link for link in local if not (REPO_ROOT / link).exists()]
    assert not missing


def test_ctrl_c_stops_everything_make_run_started(make_run: MakeRun) -> None:
    started = make_run.started
    assert len(started) >= 3, make_run.output()  # the launcher, llama-server, the gateway
    os.killpg(make_run.proc.pid, signal.SIGINT)
    assert make_run.proc.wait(60) is not None
    left = {pid for pid in started if _alive(pid)}
    assert not left, (left, make_run.output())
    assert _port_free(make_run.grpc_port)
    assert _port_free(make_run.bundled_port)
    assert "stopped the gateway and the bundled model" in make_run.output()
