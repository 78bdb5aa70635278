"""The native adapter's HTTP plumbing: pool sizing, timeouts, credentials and capped reads.

Kept apart from the wire logic so each rule is stated once: the pool is never the gateway's
own hidden limit, ``connect_timeout_s`` bounds connecting only (a wait for a pooled
connection is bounded by the call's deadline), URL credentials become a header (aiohttp
refuses them next to an ``Authorization`` header, per call), and nothing an upstream sends
is held beyond its cap.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import SimpleNamespace

import aiohttp
from yarl import URL

from llm_gateway_server.config.providers import ProviderConfig
from llm_gateway_server.core.errors import UpstreamError, UpstreamFailure
from llm_gateway_server.providers.upstream_errors import snippet

#: How long to wait for the end of a body after ``[DONE]`` so the connection stays reusable.
DRAIN_S = 0.25
#: Spare connections beyond ``max_in_flight`` (probes, streams still draining).
SPARE_CONNECTIONS = 4


def pool_limit(config: ProviderConfig) -> int:
    """Connections the pool may open; 0 is aiohttp's "no limit".

    ``max_connections`` when set; else ``max_in_flight`` plus spares; else unlimited, since
    the router's concurrency slots (or nothing, by config) are the intended limit and a
    pool of its own would make callers wait, then fail, for a healthy upstream.
    """
    if config.max_connections:
        return config.max_connections
    if config.max_in_flight:
        return config.max_in_flight + SPARE_CONNECTIONS
    return 0


def client_timeout(config: ProviderConfig, timeout_s: float) -> aiohttp.ClientTimeout:
    """The whole call within ``timeout_s``; connecting within ``connect_timeout_s``.

    ``sock_connect`` rather than ``connect``: aiohttp's ``connect`` also covers the wait for
    a free pooled connection, which is the gateway's own queue, not the upstream's fault.
    """
    return aiohttp.ClientTimeout(
        total=timeout_s,
        sock_connect=min(config.connect_timeout_s, timeout_s),
        # aiohttp rounds timeouts above this up to whole seconds: keep the deadline exact.
        ceil_threshold=timeout_s + 1.0,
    )


@dataclass(frozen=True)
class Endpoint:
    """A base URL without userinfo, and the ``Authorization`` value its userinfo meant."""

    base: str
    basic_auth: str | None


def split_credentials(api_base: str) -> Endpoint:
    """``api_base`` with ``user:password@`` moved into a Basic ``Authorization`` value.

    aiohttp would send URL credentials itself, but raises ValueError on every request that
    also carries an ``Authorization`` header (an API key, a configured header).
    """
    plain = Endpoint(api_base.rstrip("/"), None)
    if "@" not in api_base:
        return plain
    try:
        url = URL(api_base)
    except ValueError:
        return plain  # refused per call by aiohttp as an invalid URL, classified there
    if url.user is None and url.password is None:
        return plain
    # By hand: aiohttp's helpers raise on a ":" in the (decoded) user name.
    pair = f"{url.user or ''}:{url.password or ''}".encode()
    auth = "Basic " + base64.b64encode(pair).decode("ascii")
    return Endpoint(str(url.with_user(None)).rstrip("/"), auth)


def authorization(
    headers: Mapping[str, str], api_key: str | None, basic_auth: str | None
) -> str | None:
    """The one ``Authorization`` value to send: none when ``headers`` configure their own
    (in any case), else the API key as a bearer token, else the URL's userinfo."""
    if any(name.lower() == "authorization" for name in headers):
        return None
    if api_key:
        return f"Bearer {api_key}"
    return basic_auth


class PoolWaitTimeout(UpstreamError):
    """The call's time ran out while it waited for one of the pool's ``max_connections``.

    A TIMEOUT to the caller, but nothing was sent: the wait was the gateway's own, so
    routing can tell it from an upstream that did not answer (and keep it off the breaker).
    """

    upstream_fault = False

    def __init__(self, provider: str, waited_s: float, pool_size: int) -> None:
        super().__init__(
            UpstreamFailure.TIMEOUT,
            f"provider {provider!r}: no pooled connection came free within {waited_s:.1f}s"
            f" (max_connections {pool_size}); nothing was sent",
        )


class PoolWatch:
    """Tells whether a request timed out while queued for a pooled connection.

    Only installed when the pool has a limit: an unlimited pool never queues.
    """

    __slots__ = ("queued_since",)

    def __init__(self) -> None:
        self.queued_since: float | None = None

    def waited_s(self) -> float | None:
        """Seconds spent queued so far when still queued, else None."""
        since = self.queued_since
        return None if since is None else time.monotonic() - since


def pool_trace() -> aiohttp.TraceConfig:
    """A trace config that keeps each request's PoolWatch (its ``trace_request_ctx``) current."""

    async def queued_start(
        session: aiohttp.ClientSession, ctx: SimpleNamespace, params: object
    ) -> None:
        watch = ctx.trace_request_ctx
        if isinstance(watch, PoolWatch):
            watch.queued_since = time.monotonic()

    async def queued_end(
        session: aiohttp.ClientSession, ctx: SimpleNamespace, params: object
    ) -> None:
        watch = ctx.trace_request_ctx
        if isinstance(watch, PoolWatch):
            watch.queued_since = None

    trace = aiohttp.TraceConfig()
    trace.on_connection_queued_start.append(queued_start)
    trace.on_connection_queued_end.append(queued_end)
    return trace


def too_large(provider: str, what: str, limit: int, key: str) -> UpstreamError:
    """The BAD_RESPONSE for an upstream that sent more than a cap allows."""
    return UpstreamError(
        UpstreamFailure.BAD_RESPONSE,
        f"provider {provider!r} sent {what} larger than {limit} bytes ({key}); not read further",
    )


async def read_capped(
    resp: aiohttp.ClientResponse,
    *,
    provider: str,
    limit: int,
    secrets: Sequence[str] = (),
    echoes: Sequence[str] = (),
) -> bytes:
    """The whole JSON body, refused (BAD_RESPONSE) as soon as it cannot be an answer.

    A declared ``Content-Length`` over ``limit`` is refused before reading anything; a body
    that does not start like JSON is refused at its first bytes; any other is read chunk by
    chunk and refused once past ``limit``, so at most ``limit`` bytes are ever held.
    """
    declared = resp.content_length
    if declared is not None and declared > limit:
        raise too_large(provider, "an answer", limit, "max_response_bytes")
    parts: list[bytes] = []
    size = 0
    started = False
    async for chunk in resp.content.iter_any():
        size += len(chunk)
        if size > limit:
            raise too_large(provider, "an answer", limit, "max_response_bytes")
        if not started and chunk.strip():
            started = True
            head = chunk.lstrip()
            if head[:1] not in (b"{", b"["):
                text = snippet(head[:2000].decode(errors="replace"), *secrets, echoes=echoes)
                raise UpstreamError(
                    UpstreamFailure.BAD_RESPONSE, f"malformed upstream answer: not JSON ({text})"
                )
        parts.append(chunk)
    return b"".join(parts)


async def read_some(resp: aiohttp.ClientResponse, grace_s: float | None) -> bytes | None:
    """The next bytes of the body (b"" at its end); None when ``grace_s`` passed first."""
    if grace_s is None:
        return await resp.content.readany()
    grace = asyncio.timeout(grace_s)
    try:
        async with grace:
            return await resp.content.readany()
    except TimeoutError:
        if grace.expired():
            return None
        raise  # the call's own deadline


async def drain(resp: aiohttp.ClientResponse) -> None:
    """Read what follows ``[DONE]`` (the chunked terminator) so keep-alive can reuse the
    connection; a server that keeps the body open just loses that connection."""
    with contextlib.suppress(Exception):
        async with asyncio.timeout(DRAIN_S):
            while await resp.content.readany():
                pass


def running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
