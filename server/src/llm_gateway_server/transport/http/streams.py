"""Relaying a core stream over HTTP: SSE or NDJSON, one write per delta, with back-pressure.

Nothing is sent before the first event: until then a failure (or a fallback) is still an
ordinary HTTP error. Once the response has started, a failure ends it with an error event
in the facade's format, never a silent end.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Protocol

from aiohttp import web

from llm_gateway_server.core.errors import ShuttingDown, StreamInterrupted
from llm_gateway_server.core.types import ChatDelta, ChatRequest
from llm_gateway_server.streams import StreamEnd
from llm_gateway_server.transport.http.calls import Call, GatewayCalls
from llm_gateway_server.transport.http.errors import HttpError


class StreamEncoder(Protocol):
    """Turns a stream's events into the bytes of one wire format."""

    content_type: str

    def delta(self, delta: ChatDelta) -> bytes:
        """One delta (may be empty bytes: nothing to send for it)."""

    def end(self, end: StreamEnd) -> bytes:
        """The end of a complete stream."""

    def error(self, error: HttpError) -> bytes:
        """The end of a failed stream."""


def call_headers(call: Call) -> dict[str, str]:
    """Headers every answer carries: the request id and, once resolved, the route."""
    headers = {"x-request-id": call.request_id}
    if call.route:
        headers["x-llm-gateway-route"] = call.route
    return headers


async def relay(
    request: web.Request,
    calls: GatewayCalls,
    call: Call,
    chat: ChatRequest,
    encoder: StreamEncoder,
) -> web.StreamResponse:
    """Stream ``chat`` to the client; the client leaving closes the upstream at once."""
    # Fallback happens in here, before anything is sent: a failure is an ordinary HTTP error.
    stream = await calls.stream(call, chat)
    record = call.record
    response: web.StreamResponse | None = None

    async def start() -> web.StreamResponse:
        started = web.StreamResponse(headers=call_headers(call))
        started.content_type = encoder.content_type
        started.headers["Cache-Control"] = "no-cache"
        await started.prepare(request)
        return started

    try:
        # aclosing: a cancelled handler (the client disconnected) closes the gateway's
        # stream, and with it the upstream request, now rather than at garbage collection.
        async with contextlib.aclosing(stream.deltas()) as deltas:
            async for delta in deltas:
                if response is None:
                    response = await start()
                data = encoder.delta(delta)
                if data:
                    call.first_token()
                    # write() waits for the socket to drain: a slow reader slows the relay
                    # instead of growing a buffer.
                    record.sending = True
                    await response.write(data)
                    record.sending = False
                    if record.interrupted:
                        raise asyncio.CancelledError("shutdown")
        if response is None:
            response = await start()
        end = stream.end
        if end is not None and end.error is None:
            await response.write(encoder.end(end))
        else:
            cut = end.error if end is not None else None
            error = await calls.close(call, cut or StreamInterrupted("the stream ended early"))
            if error is not None:
                await response.write(encoder.error(error))
    except ConnectionResetError:
        # The client left between two writes (a disconnect usually cancels the handler
        # first): the call is over, there is nobody to tell.
        await calls.close(call, asyncio.CancelledError("client gone"))
        if response is None:
            raise
        return response
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if not (record.interrupted and task is not None) or response is None:
            raise
        # Shutdown grace is over: the client gets an error event saying so, not a bare cut.
        task.uncancel()
        cut = ShuttingDown("the server shut down during the stream; retry on another one")
        stream.interrupted(cut)
        error = await calls.close(call, cut)
        with contextlib.suppress(ConnectionResetError):
            if error is not None:
                await response.write(encoder.error(error))
    except Exception as exc:
        if response is None:
            raise  # nothing sent yet: an ordinary HTTP error
        error = await calls.close(call, exc)
        with contextlib.suppress(ConnectionResetError):
            if error is not None:
                await response.write(encoder.error(error))
    with contextlib.suppress(ConnectionResetError):
        await response.write_eof()
    return response
