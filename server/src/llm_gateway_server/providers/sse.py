"""A small incremental Server-Sent Events parser (data lines, comments, CR/LF/CRLF), bounded.

Linear in its input: each chunk is scanned once and a line split over many chunks is joined
once, when it ends, so a huge line without a newline costs no repeated copying; and a line
or an event longer than the cap is refused as soon as the cap is passed, before it is held.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp

#: The sentinel OpenAI-style servers send as the last event's data.
DONE = "[DONE]"
#: Bytes of one line or one event at most when the caller sets no cap.
DEFAULT_MAX_EVENT_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class SSEEvent:
    """One dispatched event: its ``data`` lines joined by newlines, and its ``event`` type."""

    data: str
    event: str = "message"


class EventTooLarge(Exception):
    """A line or an event passed the parser's cap; ``events`` completed before it."""

    def __init__(self, what: str, limit: int, events: list[SSEEvent]) -> None:
        super().__init__(f"an SSE {what} exceeds {limit} bytes")
        self.what = what
        self.limit = limit
        self.events = events


class SSEParser:
    """Turns byte chunks, split anywhere, into events (per the WHATWG EventSource rules).

    Works on bytes and decodes whole lines only, so a UTF-8 sequence or a CRLF split across
    two chunks is handled. ``id:`` and ``retry:`` fields are ignored: nothing here reconnects.
    """

    __slots__ = ("_data", "_data_len", "_event", "_max", "_pending", "_pending_len", "_skip_lf")

    def __init__(self, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> None:
        """Args:
        max_event_bytes: Bytes of one line, and of one event's data, at most.
        """
        self._max = max_event_bytes
        # The unterminated tail of the input, as received: joined once, when its line ends.
        self._pending: list[bytes] = []
        self._pending_len = 0
        self._data: list[str] = []
        self._data_len = 0
        self._event = ""
        # The previous chunk ended in CR: a leading LF in the next one ends no new line.
        self._skip_lf = False

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Consume one chunk and return the events it completed (often zero or one).

        Raises:
            EventTooLarge: A line or an event passed the cap (``events`` holds those the
                chunk completed before it); the parser is unusable afterwards.
        """
        if not chunk:
            return []
        if self._skip_lf and chunk[:1] == b"\n":
            chunk = chunk[1:]
        self._skip_lf = False
        if b"\r" in chunk:
            # Only this chunk is normalised; a CR at its end may be half of a CRLF.
            self._skip_lf = chunk.endswith(b"\r")
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = chunk.split(b"\n")
        tail = lines.pop()
        events: list[SSEEvent] = []
        if lines and self._pending:
            if self._pending_len + len(lines[0]) > self._max:
                raise EventTooLarge("line", self._max, events)
            self._pending.append(lines[0])
            lines[0] = b"".join(self._pending)
            self._pending.clear()
            self._pending_len = 0
        for line in lines:
            if len(line) > self._max:
                raise EventTooLarge("line", self._max, events)
            event = self._line(line, events)
            if event is not None:
                events.append(event)
        if tail:
            self._pending_len += len(tail)
            if self._pending_len > self._max:
                raise EventTooLarge("line", self._max, events)
            self._pending.append(tail)
        return events

    def flush(self) -> list[SSEEvent]:
        """End of stream: dispatch data whose lines ended but whose blank line never came.

        An unterminated last line is dropped, as the spec says: it may be a cut-off fragment.
        """
        self._pending.clear()
        self._pending_len = 0
        event = self._line(b"", [])
        return [event] if event is not None else []

    def _line(self, line: bytes, events: list[SSEEvent]) -> SSEEvent | None:
        if not line:
            if not self._data:
                self._event = ""
                return None
            event = SSEEvent("\n".join(self._data), self._event or "message")
            self._data = []
            self._data_len = 0
            self._event = ""
            return event
        if line[:1] == b":":
            return None  # comment / keep-alive
        field, sep, value = line.partition(b":")
        if sep and value[:1] == b" ":
            value = value[1:]
        if field == b"data":
            self._data_len += len(value) + 1
            if self._data_len > self._max:
                raise EventTooLarge("event", self._max, events)
            self._data.append(value.decode("utf-8", errors="replace"))
        elif field == b"event":
            self._event = value.decode("utf-8", errors="replace")
        return None


async def iter_sse(
    content: aiohttp.StreamReader, *, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES
) -> AsyncIterator[SSEEvent]:
    """Yield events from a response body as soon as each one is complete.

    Args:
        content: ``ClientResponse.content``; read with ``iter_any`` so nothing waits for a
            buffer to fill.
        max_event_bytes: Bytes of one line or event at most (EventTooLarge beyond).
    """
    parser = SSEParser(max_event_bytes)
    async for chunk in content.iter_any():
        for event in parser.feed(chunk):
            yield event
    for event in parser.flush():
        yield event
