"""``make run``: starts the bundled model's llama-server, then the gateway; Ctrl-C stops both.

Process supervision lives here, in a process of its own, and never in the gateway: the gateway
only sees the bundled model as one more ``openai_compatible`` provider (named ``bundled`` in
the shipped config), exactly as it would in compose or Kubernetes, where the model is a
service of its own. The launcher starts llama-server only when the config has that provider
and its ``api_base`` is a loopback address (the port comes from there, so the config stays the
one place that names it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import io
import os
import signal
import socket
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp

from llm_gateway_server.config.defaults import CONFIG_ENV_VAR, SHIPPED_CONFIG_PATH
from llm_gateway_server.config.loader import ConfigError, ConfigSnapshot, load_config

#: The provider name the launcher serves with the bundled model.
BUNDLED_PROVIDER = "bundled"
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
#: llama-server loads the 98 MB model in about a second; a cold disk cache or a busy machine
#: can take much longer.
_LLAMA_START_TIMEOUT_S = 120.0
#: Two slots of 4096 tokens: enough for trying the gateway and the tests, little memory. An
#: answer whose request sets no max_tokens stops at 512 tokens (llama-server's default length;
#: a request's own max_tokens still wins): a model this small only rambles past that, holding
#: a laptop's CPU meanwhile.
LLAMA_ARGS = (
    *("--embeddings", "--pooling", "mean", "-np", "2", "-c", "8192", "-n", "512"),
    "--no-webui",
)
_SERVING = "llm-gateway: serving on "
_PR_SET_PDEATHSIG = 1


class LaunchError(Exception):
    """Something a person must fix before ``make run`` can start (one line, no traceback)."""


@dataclass(frozen=True)
class BundledModel:
    """Where the config expects the bundled model and under which model name."""

    host: str
    port: int
    alias: str

    @property
    def api_base(self) -> str:
        """The provider's base URL."""
        return f"http://{self.host}:{self.port}/v1"


def bundled_model(snapshot: ConfigSnapshot) -> BundledModel | None:
    """The bundled model the config routes to, or None when it has none on loopback."""
    cfg = snapshot.config
    provider = cfg.providers.get(BUNDLED_PROVIDER)
    if provider is None or not provider.api_base:
        return None
    url = urlsplit(provider.api_base)
    if url.hostname not in _LOOPBACK or url.port is None:
        return None
    models = [
        t.model for r in cfg.routes.values() for t in r.targets if t.provider == BUNDLED_PROVIDER
    ]
    return BundledModel(url.hostname, url.port, models[0] if models else "bundled")


def _die_with_parent() -> None:
    # Runs in the child before exec: if the launcher is killed outright (SIGKILL), the kernel
    # sends the child SIGTERM, so no llama-server or gateway is left behind.
    if sys.platform == "linux":
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _check_free(host: str, port: int, key: str) -> None:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise LaunchError(
                f"{host}:{port} ({key}) is in use ({exc.strerror}): stop what listens there, "
                "or change the port in the config"
            ) from None


async def _spawn(argv: Sequence[str], **kwargs: object) -> asyncio.subprocess.Process:
    # A session of its own: Ctrl-C reaches the launcher alone, which stops the children in
    # order (gateway first, so it drains while the model can still answer).
    return await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.DEVNULL, start_new_session=True,
        preexec_fn=_die_with_parent, **kwargs,  # type: ignore[arg-type]
    )  # fmt: skip


def _tail(path: Path, n_bytes: int = 2000) -> str:
    try:
        return path.read_bytes()[-n_bytes:].decode(errors="replace")
    except OSError:
        return ""


def _llama_argv(binary: Path, model: Path, bundled: BundledModel) -> list[str]:
    if not binary.is_file():
        raise LaunchError(f"llama-server not found at {binary}: run `make llama-server`")
    if not model.is_file():
        raise LaunchError(f"bundled model not found at {model}: run `make bundled-model`")
    _check_free(bundled.host, bundled.port, f"providers.{BUNDLED_PROVIDER}.api_base")
    argv = [str(binary), "--model", str(model), "--alias", bundled.alias]
    return [*argv, "--host", bundled.host, "--port", str(bundled.port), *LLAMA_ARGS]


async def _start_llama(
    binary: Path, model: Path, bundled: BundledModel, log_path: Path, stop: asyncio.Event
) -> asyncio.subprocess.Process:
    argv = _llama_argv(binary, model, bundled)
    with log_path.open("wb") as log:
        proc = await _spawn(argv, stdout=log, stderr=asyncio.subprocess.STDOUT)
    print(f"bundled model: llama-server pid {proc.pid} on {bundled.api_base} (log {log_path})")
    deadline = time.monotonic() + _LLAMA_START_TIMEOUT_S
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
        while time.monotonic() < deadline and not stop.is_set():
            if proc.returncode is not None:
                raise LaunchError(f"llama-server exited with {proc.returncode}:\n{_tail(log_path)}")
            with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
                async with http.get(f"http://{bundled.host}:{bundled.port}/health") as resp:
                    if resp.status == 200:
                        return proc
            await asyncio.sleep(0.2)
    if stop.is_set():
        return proc  # Ctrl-C while it loads: the caller stops it
    await _stop(proc, 5.0)
    raise LaunchError(
        f"llama-server not ready after {_LLAMA_START_TIMEOUT_S:.0f} s: see {log_path}"
    )


async def _stop(
    proc: asyncio.subprocess.Process | None, grace_s: float, force: asyncio.Event | None = None
) -> None:
    """SIGTERM, then SIGKILL after ``grace_s`` or as soon as ``force`` is set (a second Ctrl-C)."""
    if proc is None or proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.terminate()
    waits = {asyncio.create_task(proc.wait())}
    if force is not None:
        waits.add(asyncio.create_task(force.wait()))
    _, pending = await asyncio.wait(waits, timeout=grace_s, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()


def _banner(snapshot: ConfigSnapshot, grpc_address: str, bundled: BundledModel | None) -> str:
    cfg = snapshot.config
    http = getattr(getattr(cfg, "http", None), "listen", "") or "off"
    metrics = cfg.telemetry.metrics_listen
    cli = Path(sys.executable).parent / "llm-gateway"
    with contextlib.suppress(ValueError):
        cli = cli.relative_to(Path.cwd())
    target = "" if grpc_address.endswith(":50051") else f" --target {grpc_address}"
    lines = [
        "",
        "llm-gateway is up (Ctrl-C stops everything `make run` started):",
        f"  gRPC     {grpc_address}  (reflection on; try .venv/bin/grpcurl -plaintext "
        f"{grpc_address} list)",
        f"  HTTP     {http}",
        f"  metrics  {f'http://{metrics}/metrics' if metrics else 'off'}",
    ]
    if bundled is not None:
        lines.append(
            f"  bundled model  {bundled.alias} at {bundled.api_base} "
            "(the last fallback of its routes; for trying the gateway, not production answers)"
        )
    lines += [f"try:  {cli} chat{target} 'Name three colours of the rainbow.'", ""]
    return "\n".join(lines)


async def _forward_output(
    gateway: asyncio.subprocess.Process, snapshot: ConfigSnapshot, bundled: BundledModel | None
) -> None:
    assert gateway.stdout is not None
    async for raw in gateway.stdout:
        line = raw.decode(errors="replace").rstrip("\n")
        print(line, flush=True)
        if line.startswith(_SERVING) and "(worker 0)" in line:
            address = line.removeprefix(_SERVING).split(" ")[0]
            print(_banner(snapshot, address, bundled), flush=True)


def _on_signals() -> tuple[asyncio.Event, asyncio.Event]:
    """Events set by SIGINT/SIGTERM: the first signal sets ``stop``, a second one ``force``."""
    stop, force = asyncio.Event(), asyncio.Event()

    def on_signal() -> None:
        # The first Ctrl-C drains the calls in flight; a second one does not wait for them.
        if stop.is_set():
            force.set()
            print("make run: stopping now", flush=True)
        stop.set()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    return stop, force


async def _until_one_ends(stop: asyncio.Event, *procs: asyncio.subprocess.Process | None) -> None:
    """Wait for a stop signal or for any of ``procs`` to exit."""
    watched: list[asyncio.Task[object]] = [asyncio.create_task(stop.wait())]
    watched += [asyncio.create_task(proc.wait()) for proc in procs if proc is not None]
    await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
    for task in watched:
        task.cancel()


async def launch(args: argparse.Namespace) -> int:
    """Run the bundled model (if configured) and the gateway until a signal; the exit code."""
    path = args.config or os.environ.get(CONFIG_ENV_VAR) or str(SHIPPED_CONFIG_PATH)
    try:
        snapshot = load_config(path)
    except ConfigError as err:
        for line in err.errors:
            print(f"{err.source}: {line}", file=sys.stderr)
        return 1
    bundled = bundled_model(snapshot) if args.bundled_model == "on" else None
    stop, force = _on_signals()
    llama: asyncio.subprocess.Process | None = None
    gateway: asyncio.subprocess.Process | None = None
    forward: asyncio.Task[None] | None = None
    try:
        if bundled is not None:
            llama = await _start_llama(args.llama_server, args.model, bundled, args.llama_log, stop)
        if stop.is_set():
            return 0
        gateway = await _spawn(
            [sys.executable, "-m", "llm_gateway_server", "serve", "--config", path],
            stdout=asyncio.subprocess.PIPE,
        )
        forward = asyncio.create_task(_forward_output(gateway, snapshot, bundled))
        await _until_one_ends(stop, gateway, llama)
        if llama is not None and llama.returncode is not None and not stop.is_set():
            print(f"bundled model: llama-server exited with {llama.returncode}:", file=sys.stderr)
            print(_tail(args.llama_log), file=sys.stderr)
    except LaunchError as exc:
        print(f"make run: {exc}", file=sys.stderr)
        return 1
    finally:
        # Gateway first: it drains its calls while the bundled model can still answer them.
        cfg = snapshot.config.server
        await _stop(gateway, cfg.drain_delay_s + cfg.shutdown_grace_s + 5.0, force)
        await _stop(llama, 10.0, force)
    if forward is not None:
        await forward
    if stop.is_set() or gateway is None:
        print("make run: stopped the gateway" + (" and the bundled model" if llama else ""))
        return 0
    # The gateway's own failure, else the bundled model's (it died under a running gateway).
    return gateway.returncode or (1 if llama is not None else 0)


def build_parser() -> argparse.ArgumentParser:
    """The launcher's arguments (the Makefile passes the cached paths)."""
    parser = argparse.ArgumentParser(prog="python -m llm_gateway_server.launcher")
    parser.add_argument("--config", help="gateway config (default: as `llm-gateway serve`)")
    parser.add_argument("--llama-server", type=Path, required=True, help="llama-server binary")
    parser.add_argument("--model", type=Path, required=True, help="the bundled model's GGUF")
    parser.add_argument("--llama-log", type=Path, required=True, help="llama-server's log file")
    parser.add_argument(
        "--bundled-model", choices=["on", "off"], default="on", help="start the bundled model"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m llm_gateway_server.launcher``."""
    # Line by line even into a pipe or a CI log: the launcher's lines are progress reports.
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(line_buffering=True)
    return asyncio.run(launch(build_parser().parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
