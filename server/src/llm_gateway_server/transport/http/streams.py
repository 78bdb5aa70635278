"""Relaying a core stream over HTTP: SSE or NDJSON, one write per delta, with back-pressure.

Nothing is sent before the first event: until then a failure (or a fallback) is still an
ordinary HTTP error. Once the response has started, a failure ends it with an error event
in the facade's format, never a silent end.
"""

from __future__ import annotations

import contextlib
from typing import Protocol

from aiohttp import web

from llm_gateway_server.core.types import ChatDelta, ChatRequest
from llm_gateway_server.gateway import StreamEnd
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
    events = calls.stream(call, chat)
    response: web.StreamResponse | None = None
    # aclosing: a cancelled handler (the client disconnected) closes the gateway's
    # generator, and with it the upstream request, now rather than at garbage collection.
    async with contextlib.aclosing(events):
        try:
            async for event in events:
                if response is None:
                    response = web.StreamResponse(headers=call_headers(call))
                    response.content_type = encoder.content_type
                    response.headers["Cache-Control"] = "no-cache"
                    await response.prepare(request)
                if isinstance(event, StreamEnd):
                    if event.error is not None:
                        await response.write(encoder.error(call.failed(event.error)))
                    else:
                        await response.write(encoder.end(event))
                    break
                data = encoder.delta(event)
                if data:
                    call.first_token()
                    # write() waits for the socket to drain: a slow reader slows the relay
                    # instead of growing a buffer.
                    await response.write(data)
        except ConnectionResetError:
            # The client left between two writes (a disconnect usually cancels the handler
            # first): the call is over, there is nobody to tell.
            call.cancelled()
            if response is None:
                raise
            return response
        except Exception as exc:
            if response is None:
                raise  # nothing sent yet: an ordinary HTTP error
            error = encoder.error(call.failed(exc))
            with contextlib.suppress(ConnectionResetError):
                await response.write(error)
    if response is None:  # pragma: no cover - the core always ends with a StreamEnd
        raise AssertionError("stream ended without a summary")
    with contextlib.suppress(ConnectionResetError):
        await response.write_eof()
    return response
