"""Streams are incremental and closing them closes the upstream request at once."""

from __future__ import annotations

import asyncio
from contextlib import aclosing

import pytest

from llm_gateway_server.providers.base import Provider
from tests.conformance.cases import AdapterCase
from tests.conformance.streams import chat_request, collect, open_stream
from tests.fakes import Behaviour, FakeUpstream

CONTENT = "one two three four five"


async def test_first_delta_arrives_before_the_upstream_finishes(
    case: AdapterCase, fake: FakeUpstream, provider: Provider
) -> None:
    # The fake holds everything after its first text frame until the test has the first
    # delta: an adapter that buffered would never yield it, and wait_for would time out.
    hold = asyncio.Event()
    fake.behaviour = Behaviour(content=CONTENT, hold=hold)
    async with aclosing(open_stream(provider, chat_request(case.model), 10)) as stream:
        first = await asyncio.wait_for(anext(stream), 5)
        assert first.content == "one "
        assert fake.completed_streams == 0
        hold.set()
        rest = [delta async for delta in stream]
    assert "".join(d.content for d in [first, *rest]) == CONTENT
    assert rest[-1].finish_reason is not None
    assert rest[-1].usage is not None


async def test_every_chunk_is_its_own_delta(
    case: AdapterCase, fake: FakeUpstream, provider: Provider
) -> None:
    # Frames that arrive apart leave apart; the native adapter may merge frames that arrive
    # in one read (see core.assembly.coalesce), which never delays anything.
    fake.behaviour = Behaviour(content=CONTENT, chunk_delay_s=0.02)
    deltas = await collect(provider, chat_request(case.model))
    assert [d.content for d in deltas if d.content] == ["one ", "two ", "three ", "four ", "five"]
    assert deltas[-1].usage is not None and deltas[-1].usage.prompt_tokens == 11


async def test_closing_the_stream_closes_the_upstream_request(
    case: AdapterCase, fake: FakeUpstream, provider: Provider
) -> None:
    fake.behaviour = Behaviour(content=CONTENT, hold=asyncio.Event())  # never released
    stream = open_stream(provider, chat_request(case.model), 10)
    assert (await asyncio.wait_for(anext(stream), 5)).content == "one "
    await stream.aclose()
    await fake.wait_disconnect(5)
    assert fake.disconnects == 1
    assert fake.completed_streams == 0


async def test_cancelling_the_consumer_closes_the_upstream_request(
    case: AdapterCase, fake: FakeUpstream, provider: Provider
) -> None:
    fake.behaviour = Behaviour(content=CONTENT, hold=asyncio.Event())  # never released
    got_first = asyncio.Event()

    async def consume() -> None:
        async with aclosing(open_stream(provider, chat_request(case.model), 10)) as stream:
            async for _ in stream:
                got_first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(got_first.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await fake.wait_disconnect(5)
    assert fake.completed_streams == 0


async def test_native_pool_leaves_no_connection_open(
    case: AdapterCase, fake: FakeUpstream, provider: Provider
) -> None:
    if case.kind not in ("openai", "openai_compatible"):
        pytest.skip("LiteLLM's HTTP clients are process-wide; the provider cannot close them")
    fake.behaviour = Behaviour(content=CONTENT, hold=asyncio.Event())
    stream = open_stream(provider, chat_request(case.model), 10)
    await asyncio.wait_for(anext(stream), 5)
    await stream.aclose()
    fake.behaviour = Behaviour(content=CONTENT)
    await collect(provider, chat_request(case.model))
    await provider.chat(chat_request(case.model), timeout_s=5)
    assert fake.open_connections >= 1, "keep-alive keeps the pooled connection"
    await provider.aclose()
    await fake.wait_no_connections(5)
