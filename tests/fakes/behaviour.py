"""What a fake upstream answers next: a canned answer, or a fault to inject."""

from __future__ import annotations

import asyncio
import enum
import hashlib
import re
from dataclasses import dataclass, field
from typing import Any


class Fault(enum.StrEnum):
    """A failure a fake upstream can inject."""

    NONE = "none"
    #: Accept the request and answer nothing for ``hang_s`` (default: until the client leaves).
    HANG = "hang"
    #: Answer ``status`` (default 500) with an error body in the server's wire format.
    HTTP_ERROR = "http_error"
    #: Answer 429 with ``Retry-After: retry_after``.
    RATE_LIMIT = "rate_limit"
    #: Answer 200 with a body that is not JSON (unary) or a garbage chunk (stream).
    MALFORMED = "malformed"
    #: Stream ``cut_after`` frames (unary: half the body), then drop the connection.
    CUT_STREAM = "cut_stream"
    #: Close the connection before sending any response.
    DROP = "drop"
    #: Stream ``cut_after`` frames, then end the body cleanly (no finish reason, no [DONE]).
    TRUNCATE = "truncate"


@dataclass
class FakeToolCall:
    """A tool call the fake model makes; ``arguments`` is serialised per wire format."""

    name: str
    arguments: dict[str, Any]
    id: str = "call_1"


@dataclass
class FakeUsage:
    """Token counts as the gateway should see them (each fake encodes its wire's way)."""

    prompt_tokens: int = 11
    completion_tokens: int = 7
    reasoning_tokens: int = 0
    cached_tokens: int = 0


@dataclass
class Behaviour:
    """One scripted answer. Set ``fake.behaviour`` (default) or queue some with ``script``.

    Finish reasons use OpenAI names (stop, length, tool_calls, content_filter); each fake
    translates them to its own wire format.
    """

    content: str = "Hello from the fake."
    #: Streams: send ``content`` in exactly these pieces (e.g. a tag split in two); they
    #: must concatenate to ``content``. Empty: word-sized pieces.
    content_pieces: tuple[str, ...] = ()
    reasoning: str = ""
    #: FakeOpenAI only: the field name reasoning travels under.
    reasoning_field: str = "reasoning_content"
    tool_calls: list[FakeToolCall] = field(default_factory=list)
    #: None: ``tool_calls`` when there are tool calls, else ``stop``.
    finish_reason: str | None = None
    usage: FakeUsage = field(default_factory=FakeUsage)
    #: None: echo the model the request named.
    model: str | None = None

    fault: Fault = Fault.NONE
    #: Inject ``fault`` into this many requests, then answer normally (None: every request).
    fault_times: int | None = None
    status: int = 500
    #: Text of the error body's message (per wire format), for HTTP_ERROR and RATE_LIMIT.
    error_message: str = "the fake upstream failed"
    #: A full error body to send verbatim instead (dict: as JSON).
    error_body: Any = None
    retry_after: str = "7"
    hang_s: float = 3600.0
    cut_after: int = 2

    #: Delay before the first frame of a stream / before a unary answer.
    first_token_delay_s: float = 0.0
    #: Delay between stream frames.
    chunk_delay_s: float = 0.0
    #: Streams: after the first frame carrying text, wait for this before sending the rest.
    hold: asyncio.Event | None = None
    #: FakeOpenAI streams: usage in its own last chunk with empty choices (like OpenAI).
    usage_in_separate_chunk: bool = True
    #: FakeOpenAI streams: end with ``data: [DONE]``.
    send_done: bool = True
    #: FakeOpenAI streams: after the first text frame, send this as an error event and stop.
    stream_error: Any = None
    #: FakeOpenAI streams: never send usage, even when asked (servers that ignore
    #: ``stream_options``).
    omit_usage: bool = False
    #: Streams: after the last frame, keep the body open (no end) until the client leaves.
    hold_open: bool = False
    #: HTTP_ERROR: the error message repeats the request's headers and raw body, as a
    #: careless server's debugging output does.
    echo_request: bool = False
    #: Answer 200 with this many bytes instead (unary: one huge JSON string; stream: one
    #: ``data:`` line with no newline), written 64 KiB at a time.
    oversize_bytes: int = 0
    #: With ``oversize_bytes``: declare the size in Content-Length (else chunked).
    oversize_declared: bool = False
    #: FakeOpenAI: report at most the request's ``max_tokens`` completion tokens, as real
    #: models do (the answer stops there).
    honour_max_tokens: bool = False

    #: Vectors to return; None: ``fake_vector(text, embedding_dim)`` per input.
    embeddings: list[list[float]] | None = None
    embedding_dim: int = 4
    #: FakeOpenAI: return embeddings out of order (clients must sort by ``index``).
    shuffle_embeddings: bool = False

    @property
    def effective_finish(self) -> str:
        """The finish reason in OpenAI names."""
        if self.finish_reason:
            return self.finish_reason
        return "tool_calls" if self.tool_calls else "stop"

    def stream_pieces(self) -> list[str]:
        """The pieces a stream sends ``content`` in."""
        return list(self.content_pieces) if self.content_pieces else pieces(self.content)

    def vectors(self, inputs: list[str]) -> list[list[float]]:
        """The vectors for ``inputs``."""
        if self.embeddings is not None:
            return self.embeddings
        return [fake_vector(text, self.embedding_dim) for text in inputs]


def fake_vector(text: str, dim: int = 4) -> list[float]:
    """A deterministic vector for ``text`` (exact through any JSON round trip)."""
    digest = hashlib.sha256(text.encode()).digest()
    return [digest[i % len(digest)] / 256.0 for i in range(dim)]


def pieces(text: str) -> list[str]:
    """Split text into word-sized stream pieces that concatenate back to ``text``."""
    return re.findall(r"\S+\s*|\s+", text) if text else []


def halves(text: str) -> list[str]:
    """Split text in two non-empty fragments when possible (tool-call argument streaming)."""
    if len(text) < 2:
        return [text] if text else []
    middle = len(text) // 2
    return [text[:middle], text[middle:]]
