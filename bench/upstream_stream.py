"""The fake upstream's streamed answers: SSE events, sent at a fixed rate by one ticker."""

from __future__ import annotations

import asyncio
from typing import Protocol

import orjson

#: The generated tokens, in turn; all are TOKEN_LEN characters long.
TOKENS = tuple(f"t{c}k," for c in "abcdefghij")
TOKEN_LEN = 4
#: Matches exactly one token in any answer or stream (nothing else in the JSON matches it).
TOKEN_PATTERN = rb"t[a-j]k,"
#: ``created`` of every answer (a fixed value: nothing reads it).
CREATED = 1_700_000_000

_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
    b"Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n"
)


def answer_text(tokens: int) -> str:
    """The text of a ``tokens``-token answer."""
    return "".join(TOKENS[i % len(TOKENS)] for i in range(tokens))


def chunk(data: bytes) -> bytes:
    """``data`` as one HTTP/1.1 chunk."""
    return b"%x\r\n%s\r\n" % (len(data), data)


class StreamConnection(Protocol):
    """The connection a stream writes to (the upstream's protocol instance)."""

    def connected(self) -> bool:
        """True while the client is there."""

    def writable(self) -> bool:
        """True while connected and the socket buffer has room."""

    def write(self, data: bytes) -> None:
        """Send bytes to the client."""

    def stream_done(self, *, close: bool) -> None:
        """The stream is complete: the connection goes on with its next request."""


class SseStream:
    """One streamed answer: its events, how many tokens went out, and when it started."""

    def __init__(
        self,
        protocol: StreamConnection,
        model: str,
        tokens: int,
        usage: dict[str, int] | None,
        close: bool,
    ) -> None:
        prefix = (
            b'data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":%d,'
            b'"model":%s,"choices":[{"index":0,"delta":' % (CREATED, orjson.dumps(model))
        )
        self.events = [
            prefix + b'{"content":"%s"},"finish_reason":null}]}\n\n' % token.encode()
            for token in TOKENS
        ]
        tail = prefix + b'{},"finish_reason":"stop"}]}\n\n'
        if usage is not None:
            tail += b'data: {"id":"chatcmpl-bench","object":"chat.completion.chunk",'
            tail += b'"created":%d,"model":%s,"choices":[],"usage":%s}\n\n' % (
                CREATED,
                orjson.dumps(model),
                orjson.dumps(usage),
            )
        self.tail = chunk(tail + b"data: [DONE]\n\n") + b"0\r\n\r\n"
        self.protocol = protocol
        self.tokens = tokens
        self.close = close
        self.sent = 0
        self.start = asyncio.get_running_loop().time()
        first = prefix + b'{"role":"assistant","content":""},"finish_reason":null}]}\n\n'
        protocol.write(_HEAD + chunk(first))

    def pump(self, now: float, rate: float) -> bool:
        """Send the tokens due by ``now``; True once the stream is over (done or abandoned)."""
        protocol = self.protocol
        if not protocol.writable():
            return not protocol.connected()
        if rate > 0:
            due = min(self.tokens, int((now - self.start) * rate) + 1)
        else:
            due = min(self.tokens, self.sent + 256)
        if due > self.sent:
            count = len(self.events)
            batch = b"".join(self.events[i % count] for i in range(self.sent, due))
            protocol.write(chunk(batch))
            self.sent = due
        if self.sent < self.tokens:
            return False
        protocol.write(self.tail)
        protocol.stream_done(close=self.close)
        return True


class Ticker:
    """Sends every stream's due tokens once a millisecond.

    One timer for all streams instead of one sleep per token per stream: at 32 streams of
    1000 tokens/s that is the difference between a few percent of a core and a third of one,
    taken from the core the system under test shares with the upstream.
    """

    tick_s = 0.001

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.streams: list[SseStream] = []
        self.task: asyncio.Task[None] | None = None

    def add(self, stream: SseStream) -> None:
        """Start pumping ``stream``."""
        self.streams.append(stream)
        if self.task is None or self.task.done():
            self.task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while self.streams:
            # Unlimited streams go as fast as the sockets take them; yield so reads go on.
            await asyncio.sleep(self.tick_s if self.rate > 0 else 0)
            now = loop.time()
            self.streams = [s for s in self.streams if not s.pump(now, self.rate)]
