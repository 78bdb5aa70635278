"""Checks ``serve`` makes before it starts: every address it will listen on is free.

gRPC reports a taken port as "Failed to bind" with no address, and aiohttp as a traceback
from deep inside the metrics server; one line naming the address and the key that set it is
what a person can act on. The check binds and closes at once, so a race with another process
is still possible, and the server's own error remains the backstop.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

from llm_gateway_server.config.loader import ConfigSnapshot
from llm_gateway_server.telemetry.setup import metrics_address


@dataclass(frozen=True)
class Listener:
    """One address the gateway will bind, and the config key (or flag) that names it."""

    host: str
    port: int
    key: str

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def _split(address: str) -> tuple[str, int] | None:
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        return None  # unix sockets and the like: nothing to check here
    return host.strip("[]") or "0.0.0.0", int(port)


def listeners(
    snapshot: ConfigSnapshot,
    *,
    listen: str | None,
    workers: int,
    http_listen: str | None = None,
) -> list[Listener]:
    """The fixed-port addresses ``serve`` binds (port 0 picks a free one, so it is left out)."""
    found: list[Listener] = []
    grpc = _split(listen or snapshot.config.server.listen)
    if grpc is not None:
        found.append(Listener(*grpc, "--listen" if listen else "server.listen"))
    # The HTTP facade's address, once the config has one (`http.listen`, `--http-listen`).
    configured = getattr(getattr(snapshot.config, "http", None), "listen", None)
    http = _split(http_listen or configured or "")
    if http is not None:
        found.append(Listener(*http, "--http-listen" if http_listen else "http.listen"))
    for worker in range(workers):
        metrics = metrics_address(snapshot.config.telemetry, worker_index=worker)
        if metrics is not None:
            found.append(Listener(*metrics, "telemetry.metrics_listen"))
    return [item for item in found if item.port != 0]


def address_in_use(listener: Listener) -> str | None:
    """Why ``listener`` cannot be bound now (the OS's reason), or None when it can."""
    try:
        infos = socket.getaddrinfo(
            listener.host, listener.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as exc:
        return f"cannot resolve {listener.host!r} ({exc.strerror})"
    family, kind, proto, _, sockaddr = infos[0]
    with socket.socket(family, kind, proto) as sock:
        # As servers bind: a port held only by closed connections (TIME_WAIT) is free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(sockaddr)
        except OSError as exc:
            return exc.strerror or str(exc)
    return None


def unbindable(
    snapshot: ConfigSnapshot, *, listen: str | None, workers: int, http_listen: str | None = None
) -> list[str]:
    """One line per address that ``serve`` could not bind, naming the address and its key."""
    lines = []
    for listener in listeners(snapshot, listen=listen, workers=workers, http_listen=http_listen):
        reason = address_in_use(listener)
        if reason is not None:
            lines.append(
                f"cannot listen on {listener} ({listener.key}): {reason}; "
                f"stop what listens there or change {listener.key}"
            )
    return lines
