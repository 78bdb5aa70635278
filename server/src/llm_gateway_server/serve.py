"""Runs the gateway: one process, or N worker processes sharing a port (SO_REUSEPORT).

Follows gRPC's Python multiprocessing example: each worker is a separate process with its
own event loop and gRPC server bound with SO_REUSEPORT, and the kernel spreads connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal
import sys

from llm_gateway_server.config.loader import ConfigSnapshot, load_config

logger = logging.getLogger(__name__)

#: Seconds between checks of the config file when ``server.watch_config`` is on.
_WATCH_INTERVAL_S = 2.0


def _new_loop() -> asyncio.AbstractEventLoop:
    # uvloop makes the event loop measurably cheaper per request; LLM_GATEWAY_UVLOOP=0 opts out.
    if os.environ.get("LLM_GATEWAY_UVLOOP", "1") != "0":
        try:
            import uvloop

            return uvloop.new_event_loop()
        except ImportError:  # pragma: no cover - uvloop is a dependency
            pass
    return asyncio.new_event_loop()


async def _watch(path: str, reload: asyncio.Event) -> None:
    try:
        last = (await asyncio.to_thread(os.stat, path)).st_mtime
    except OSError:
        last = 0.0
    while True:
        await asyncio.sleep(_WATCH_INTERVAL_S)
        try:
            mtime = (await asyncio.to_thread(os.stat, path)).st_mtime
        except OSError:
            continue
        if mtime != last:
            last = mtime
            reload.set()


async def serve_forever(
    snapshot: ConfigSnapshot,
    config_path: str | None,
    *,
    listen: str | None,
    reuse_port: bool = False,
    worker: int = 0,
    http_listen: str | None = None,
) -> None:
    """Serve until SIGTERM or SIGINT; SIGHUP (or a changed file, if watched) reloads."""
    from llm_gateway_server.app import build_server
    from llm_gateway_server.telemetry.logging import configure_logging
    from llm_gateway_server.telemetry.setup import setup_telemetry

    # Before anything logs: the configured format and level, secrets redacted everywhere.
    configure_logging(snapshot.config.telemetry, secrets=snapshot.secrets())
    telemetry = setup_telemetry(snapshot.config.telemetry, worker_index=worker)
    server = await build_server(
        snapshot,
        listen=listen,
        config_path=config_path,
        telemetry=telemetry,
        reuse_port=reuse_port,
        http_listen=http_listen,
    )
    stop, reload = asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, reload.set)
    await server.start()
    host = (listen or snapshot.config.server.listen).rpartition(":")[0]
    # One machine-readable line on stdout: scripts and tests started with port 0 read it.
    print(f"llm-gateway: serving on {host}:{server.port} (worker {worker})", flush=True)
    if server.http is not None:
        print(f"llm-gateway: http on {server.http.address}", flush=True)
    watcher = None
    if config_path and snapshot.config.server.watch_config:
        watcher = asyncio.create_task(_watch(config_path, reload))
    while not stop.is_set():
        stop_wait = asyncio.create_task(stop.wait())
        reload_wait = asyncio.create_task(reload.wait())
        await asyncio.wait({stop_wait, reload_wait}, return_when=asyncio.FIRST_COMPLETED)
        stop_wait.cancel()
        reload_wait.cancel()
        if reload.is_set() and not stop.is_set():
            reload.clear()
            await server.reload()
    logger.info("shutting down: health NOT_SERVING, draining calls in flight")
    if watcher is not None:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
    await server.stop()


def _worker_main(
    config_path: str, listen: str | None, worker: int, http_listen: str | None = None
) -> None:
    snapshot = load_config(config_path)
    with asyncio.Runner(loop_factory=_new_loop) as runner:
        runner.run(
            serve_forever(
                snapshot,
                config_path,
                listen=listen,
                reuse_port=True,
                worker=worker,
                http_listen=http_listen,
            )
        )


def run(
    snapshot: ConfigSnapshot,
    config_path: str | None,
    *,
    listen: str | None,
    workers: int,
    http_listen: str | None = None,
) -> int:
    """Run the gateway in the foreground; returns the process exit code."""
    if workers == 1:
        with asyncio.Runner(loop_factory=_new_loop) as runner:
            runner.run(serve_forever(snapshot, config_path, listen=listen, http_listen=http_listen))
        return 0
    if config_path is None:
        print("--workers needs a config file", file=sys.stderr)
        return 2
    address = listen or snapshot.config.server.listen
    if address.endswith(":0"):
        print("--workers needs a fixed port, not 0", file=sys.stderr)
        return 2
    # gRPC must not be initialised before fork; the parent only supervises.
    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(target=_worker_main, args=(config_path, listen, i, http_listen), daemon=False)
        for i in range(workers)
    ]
    for proc in procs:
        proc.start()

    def forward(signum: int, _frame: object) -> None:
        for proc in procs:
            if proc.pid is not None and proc.is_alive():
                os.kill(proc.pid, signum)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, forward)
    for proc in procs:
        proc.join()
    return max((proc.exitcode or 0) for proc in procs)
