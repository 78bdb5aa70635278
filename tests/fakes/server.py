"""The shared machinery of fake upstreams: serving, recording, fault injection, streaming."""

from __future__ import annotations

import asyncio
import dataclasses
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, NoReturn, Self

import orjson
from aiohttp import web

from tests.fakes.behaviour import Behaviour, Fault

#: Set on a request whose connection the fake drops on purpose (not a client disconnect).
CUT: web.RequestKey[bool] = web.RequestKey("fake_cut", bool)

Handler = Callable[[web.Request, Any, Behaviour], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class RecordedRequest:
    """One request the fake received."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    #: The body parsed as JSON (None when empty or not JSON).
    json: Any
    raw: bytes


@dataclass(frozen=True)
class Frame:
    """One unit of a streamed body; ``payload`` marks frames carrying model output."""

    data: bytes
    payload: bool = False


class FakeUpstream:
    """Base of the fakes: an aiohttp server on 127.0.0.1, port 0, as an async context manager.

    Subclasses list their routes with ``self.endpoint(handler)``. Useful attributes for tests:
    ``behaviour`` (default answer), ``script(...)`` (answers for the next requests), ``requests``
    (what arrived), ``disconnects`` (clients that left mid-request), ``open_connections``.
    """

    #: Content type of streamed bodies (SSE, or NDJSON for Ollama).
    stream_content_type = "text/event-stream"

    def __init__(self, behaviour: Behaviour | None = None, *, models: tuple[str, ...] = ()) -> None:
        self.behaviour = behaviour or Behaviour()
        self.models = models or ("fake-model",)
        self.requests: list[RecordedRequest] = []
        #: Requests whose client went away before the fake finished answering.
        self.disconnects = 0
        #: Streams the fake wrote to the end.
        self.completed_streams = 0
        self.port = 0
        self._script: deque[Behaviour] = deque()
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._disconnected: asyncio.Event | None = None

    # ------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (no path)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """The ``api_base`` a client of this wire format is configured with."""
        return self.url

    async def start(self) -> Self:
        """Listen on a free port."""
        self._disconnected = asyncio.Event()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.add_routes(self.routes())
        # handler_cancellation: a client that disconnects cancels its handler, which is how
        # the fake notices (and records) that the client went away.
        self._runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
        await self._runner.setup()
        self._site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await self._site.start()
        if not self.port:
            server = self._site._server
            assert isinstance(server, asyncio.Server)
            self.port = server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        """Stop serving and drop every connection."""
        if self._runner is not None:
            await self._runner.cleanup()
        self._runner = self._site = None

    async def refuse(self) -> None:
        """Stop listening (connections get refused) but keep the port for ``accept``."""
        if self._site is not None:
            await self._site.stop()
            self._site = None

    async def accept(self) -> None:
        """Listen again on the same port after ``refuse``."""
        if self._site is None and self._runner is not None:
            self._site = web.TCPSite(self._runner, "127.0.0.1", self.port)
            await self._site.start()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # ------------------------------------------------------------ for tests

    def script(self, *behaviours: Behaviour) -> None:
        """Answer the next requests with these, in order, then with ``behaviour`` again."""
        self._script.extend(behaviours)

    @property
    def open_connections(self) -> int:
        """TCP connections currently open to the fake."""
        server = self._runner.server if self._runner is not None else None
        return len(server.connections) if server is not None else 0

    @property
    def last_request(self) -> RecordedRequest:
        """The most recent request (raises IndexError when none came)."""
        return self.requests[-1]

    async def wait_disconnect(self, timeout: float = 5.0) -> None:
        """Return once a client left mid-request (raises TimeoutError otherwise)."""
        assert self._disconnected is not None
        await asyncio.wait_for(self._disconnected.wait(), timeout)

    async def wait_no_connections(self, timeout: float = 5.0) -> None:
        """Return once no connection is open (raises TimeoutError otherwise)."""
        async with asyncio.timeout(timeout):
            while self.open_connections:
                await asyncio.sleep(0.01)

    # ------------------------------------------------------------ for subclasses

    def routes(self) -> list[web.RouteDef]:
        """The server's routes (override)."""
        raise NotImplementedError

    def error_payload(self, status: int, message: str) -> Any:
        """An error body in the server's wire format (override)."""
        return {"error": {"message": message, "code": status}}

    def malformed_frame(self) -> bytes:
        """A stream frame that is not valid JSON (override for non-SSE formats)."""
        return b"data: {this is not json\n\n"

    def endpoint(self, handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        """Wrap a wire handler with recording, fault injection and disconnect detection."""

        async def handle(request: web.Request) -> web.StreamResponse:
            raw = await request.read()
            body = _json_or_none(raw)
            self.requests.append(
                RecordedRequest(
                    request.method,
                    request.path,
                    dict(request.query),
                    dict(request.headers),
                    body,
                    raw,
                )
            )
            behaviour = self._next_behaviour()
            try:
                if behaviour.oversize_bytes and behaviour.fault is Fault.NONE:
                    return await self._oversize(request, body, behaviour)
                early = await self._fault_response(request, behaviour, raw)
                if early is not None:
                    return early
                return await handler(request, body, behaviour)
            except (asyncio.CancelledError, ConnectionResetError):
                if not request.get(CUT):
                    self._record_disconnect()
                raise

        return handle

    async def send_json(
        self, request: web.Request, payload: Any, behaviour: Behaviour
    ) -> web.StreamResponse:
        """A unary JSON answer, honouring MALFORMED, CUT_STREAM and the first-token delay."""
        if behaviour.first_token_delay_s:
            await asyncio.sleep(behaviour.first_token_delay_s)
        if behaviour.fault is Fault.MALFORMED:
            return web.Response(body=b'{"choices": [{"mess', content_type="application/json")
        data = orjson.dumps(payload)
        if behaviour.fault is Fault.CUT_STREAM:
            resp = web.StreamResponse(headers={"Content-Length": str(len(data))})
            resp.content_type = "application/json"
            await resp.prepare(request)
            await resp.write(data[: len(data) // 2])
            return self._cut(request, resp)
        return web.Response(body=data, content_type="application/json")

    async def send_stream(
        self, request: web.Request, frames: list[Frame], behaviour: Behaviour
    ) -> web.StreamResponse:
        """Write ``frames`` one by one with the behaviour's delays, hold, cut and garbage."""
        resp = web.StreamResponse(headers={"Cache-Control": "no-cache"})
        resp.content_type = self.stream_content_type
        await resp.prepare(request)
        if behaviour.first_token_delay_s:
            await asyncio.sleep(behaviour.first_token_delay_s)
        held = False
        for i, frame in enumerate(frames):
            if behaviour.fault is Fault.CUT_STREAM and i >= behaviour.cut_after:
                return self._cut(request, resp)
            if behaviour.fault is Fault.TRUNCATE and i >= behaviour.cut_after:
                await resp.write_eof()
                return resp
            if behaviour.fault is Fault.MALFORMED and i == 1:
                await resp.write(self.malformed_frame())
            if i and behaviour.chunk_delay_s:
                await asyncio.sleep(behaviour.chunk_delay_s)
            await resp.write(frame.data)
            if frame.payload and behaviour.hold is not None and not held:
                held = True
                await behaviour.hold.wait()
        self.completed_streams += 1
        if behaviour.hold_open:
            await asyncio.sleep(3600)  # until the client leaves (cancels this handler)
        await resp.write_eof()
        return resp

    # ------------------------------------------------------------ internals

    def _next_behaviour(self) -> Behaviour:
        behaviour = self._script.popleft() if self._script else self.behaviour
        if behaviour.fault is not Fault.NONE and behaviour.fault_times is not None:
            if behaviour.fault_times <= 0:
                return dataclasses.replace(behaviour, fault=Fault.NONE)
            behaviour.fault_times -= 1
        return behaviour

    async def _oversize(
        self, request: web.Request, body: Any, behaviour: Behaviour
    ) -> web.StreamResponse:
        size = behaviour.oversize_bytes
        streaming = isinstance(body, dict) and bool(body.get("stream"))
        head = b"data: " if streaming else b'{"pad": "'
        headers = {"Content-Length": str(size)} if behaviour.oversize_declared else {}
        resp = web.StreamResponse(headers=headers)
        resp.content_type = self.stream_content_type if streaming else "application/json"
        await resp.prepare(request)
        block = b"x" * 65536
        try:
            await resp.write(head)
            sent = len(head)
            while sent < size:
                piece = block[: size - sent]
                await resp.write(piece)
                sent += len(piece)
        except ConnectionResetError:
            # The client hung up on the oversized body, as it should: a disconnect.
            raise asyncio.CancelledError from None
        await resp.write_eof()
        return resp

    async def _fault_response(
        self, request: web.Request, behaviour: Behaviour, raw: bytes
    ) -> web.StreamResponse | None:
        fault = behaviour.fault
        if fault is Fault.DROP:
            request[CUT] = True
            assert request.transport is not None
            request.transport.abort()
            raise asyncio.CancelledError  # nothing more to send on a dropped connection
        if fault is Fault.HANG:
            await asyncio.sleep(behaviour.hang_s)
            return None
        if fault in (Fault.HTTP_ERROR, Fault.RATE_LIMIT):
            status = 429 if fault is Fault.RATE_LIMIT else behaviour.status
            body = behaviour.error_body
            if body is None and behaviour.echo_request:
                echoed = "".join(f"{k}: {v}\n" for k, v in request.headers.items())
                message = f"{behaviour.error_message}; request was:\n{echoed}\n{raw.decode()}"
                body = self.error_payload(status, message)
            if body is None:
                body = self.error_payload(status, behaviour.error_message)
            data = body.encode() if isinstance(body, str) else orjson.dumps(body)
            headers = {"Retry-After": behaviour.retry_after} if status == 429 else {}
            return web.Response(
                status=status, body=data, headers=headers, content_type="application/json"
            )
        return None

    def _cut(self, request: web.Request, resp: web.StreamResponse) -> NoReturn:
        request[CUT] = True
        assert request.transport is not None
        request.transport.abort()
        raise asyncio.CancelledError  # the body must not be completed

    def _record_disconnect(self) -> None:
        self.disconnects += 1
        if self._disconnected is not None:
            self._disconnected.set()


def _json_or_none(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
