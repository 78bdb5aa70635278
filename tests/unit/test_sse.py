"""The SSE parser: fields, comments, line endings and chunk boundaries anywhere."""

from __future__ import annotations

import itertools

from aiohttp import ClientSession, web
from hypothesis import given
from hypothesis import strategies as st

from llm_gateway_server.providers.sse import DONE, SSEEvent, SSEParser, iter_sse

STREAM = (
    b": keep-alive comment\n"
    b'data: {"a": 1}\n\n'
    b"event: content_block_delta\r\n"
    b"data: first line\r\n"
    b"data:second line\r\n\r\n"
    b"id: 7\rretry: 100\rdata:  two spaces\r\r"
    b"data: caf\xc3\xa9 \xe2\x82\xac\n\n"
    b"data\n\n"
    b"unknown: field\n\n"
    b"data: [DONE]\n\n"
)
EXPECTED = [
    SSEEvent('{"a": 1}'),
    SSEEvent("first line\nsecond line", "content_block_delta"),
    SSEEvent(" two spaces"),
    SSEEvent("café €"),
    SSEEvent(""),
    SSEEvent(DONE),
]


def feed_all(chunks: list[bytes]) -> list[SSEEvent]:
    parser = SSEParser()
    events = [event for chunk in chunks for event in parser.feed(chunk)]
    return events + parser.flush()


def test_one_chunk() -> None:
    assert feed_all([STREAM]) == EXPECTED


def test_byte_by_byte() -> None:
    assert feed_all([STREAM[i : i + 1] for i in range(len(STREAM))]) == EXPECTED


@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=20))
def test_any_chunk_boundaries(cuts: list[int]) -> None:
    points = [0, *sorted(cuts), len(STREAM)]
    chunks = [STREAM[a:b] for a, b in itertools.pairwise(points)]
    assert feed_all(chunks) == EXPECTED


def test_crlf_split_between_chunks_is_one_line_ending() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: x\r") == []
    assert parser.feed(b"\n\r") == [SSEEvent("x")]
    assert parser.feed(b"\ndata: y\n\n") == [SSEEvent("y")]


def test_events_are_dispatched_as_soon_as_complete() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: a\n") == []
    assert parser.feed(b"\n") == [SSEEvent("a")]


def test_flush_keeps_finished_lines_and_drops_a_partial_one() -> None:
    parser = SSEParser()
    parser.feed(b"data: complete\n")
    assert parser.flush() == [SSEEvent("complete")]
    parser.feed(b'data: {"cut')
    assert parser.flush() == []


def test_blank_lines_without_data_dispatch_nothing() -> None:
    assert feed_all([b"\n\n\r\n: c\n\nevent: x\n\n"]) == []


async def test_iter_sse_over_a_real_response() -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        await resp.prepare(request)
        for i in range(0, len(STREAM), 7):
            await resp.write(STREAM[i : i + 7])
        await resp.write(b"data: no blank line at the end\n")
        await resp.write_eof()
        return resp

    app = web.Application()
    app.router.add_get("/", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with ClientSession() as session, session.get(f"http://127.0.0.1:{port}/") as resp:
            events = [event async for event in iter_sse(resp.content)]
    finally:
        await runner.cleanup()
    assert events == [*EXPECTED, SSEEvent("no blank line at the end")]
