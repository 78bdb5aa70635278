"""The Prometheus scrape endpoint (GET /metrics), served by aiohttp on the event loop.

On the loop rather than prometheus_client's server thread: it starts and stops at once
(tests open one per test), binds port 0, and a scrape every few seconds costs the loop
about a millisecond, which a thread would not save under the GIL anyway.
"""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder


def parse_listen(listen: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` too) into host and port; ValueError if malformed."""
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"metrics_listen must be HOST:PORT, got {listen!r}")
    return host.strip("[]") or "0.0.0.0", int(port)


class MetricsServer:
    """Serves one registry in the Prometheus text format on ``/metrics``."""

    def __init__(self, registry: CollectorRegistry, host: str, port: int) -> None:
        """Args: the registry to expose and where to listen (port 0: any free port)."""
        self._registry = registry
        self._host = host
        self._port = port
        self._runner: web.AppRunner | None = None
        self.bound_port: int | None = None

    async def _metrics(self, request: web.Request) -> web.Response:
        encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
        return web.Response(body=encoder(self._registry), headers={"Content-Type": content_type})

    async def start(self) -> int:
        """Listen; returns the bound port."""
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self._host, self._port, reuse_address=True)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        # The bound address tells the real port when the config said 0.
        self.bound_port = int(runner.addresses[0][1])
        return self.bound_port

    async def stop(self) -> None:
        """Stop listening (idempotent)."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
