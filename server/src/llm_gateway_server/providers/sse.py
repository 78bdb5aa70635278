"""A small incremental Server-Sent Events parser (data lines, comments, CR/LF/CRLF)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp

#: The sentinel OpenAI-style servers send as the last event's data.
DONE = "[DONE]"


@dataclass(frozen=True, slots=True)
class SSEEvent:
    """One dispatched event: its ``data`` lines joined by newlines, and its ``event`` type."""

    data: str
    event: str = "message"


class SSEParser:
    """Turns byte chunks, split anywhere, into events (per the WHATWG EventSource rules).

    Works on bytes and decodes whole lines only, so a UTF-8 sequence or a CRLF split across
    two chunks is handled. ``id:`` and ``retry:`` fields are ignored: nothing here reconnects.
    """

    __slots__ = ("_buffer", "_data", "_event", "_skip_lf")

    def __init__(self) -> None:
        self._buffer = b""
        self._data: list[str] = []
        self._event = ""
        # The previous chunk ended in CR: a leading LF in the next one ends no new line.
        self._skip_lf = False

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Consume one chunk and return the events it completed (often zero or one)."""
        if not chunk:
            return []
        if self._skip_lf and chunk[:1] == b"\n":
            chunk = chunk[1:]
            if not chunk:
                self._skip_lf = False
                return []
        self._skip_lf = False
        buffer = self._buffer + chunk if self._buffer else chunk
        if b"\r" in buffer:
            self._skip_lf = buffer.endswith(b"\r")
            buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = buffer.split(b"\n")
        self._buffer = lines.pop()
        events: list[SSEEvent] = []
        for line in lines:
            event = self._line(line)
            if event is not None:
                events.append(event)
        return events

    def flush(self) -> list[SSEEvent]:
        """End of stream: dispatch data whose lines ended but whose blank line never came.

        An unterminated last line is dropped, as the spec says: it may be a cut-off fragment.
        """
        self._buffer = b""
        event = self._line(b"")
        return [event] if event is not None else []

    def _line(self, line: bytes) -> SSEEvent | None:
        if not line:
            if not self._data:
                self._event = ""
                return None
            event = SSEEvent("\n".join(self._data), self._event or "message")
            self._data = []
            self._event = ""
            return event
        if line[:1] == b":":
            return None  # comment / keep-alive
        field, sep, value = line.partition(b":")
        if sep and value[:1] == b" ":
            value = value[1:]
        if field == b"data":
            self._data.append(value.decode("utf-8", errors="replace"))
        elif field == b"event":
            self._event = value.decode("utf-8", errors="replace")
        return None


async def iter_sse(content: aiohttp.StreamReader) -> AsyncIterator[SSEEvent]:
    """Yield events from a response body as soon as each one is complete.

    Args:
        content: ``ClientResponse.content``; read with ``iter_any`` so nothing waits for a
            buffer to fill.
    """
    parser = SSEParser()
    async for chunk in content.iter_any():
        for event in parser.feed(chunk):
            yield event
    for event in parser.flush():
        yield event
