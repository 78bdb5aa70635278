"""Stopping the gateway: HTTP calls in flight finish within the grace, then are cut."""

from __future__ import annotations

import asyncio

import aiohttp

from llm_gateway_server.app import build_server
from llm_gateway_server.config.loader import parse_config
from tests.fakes import Behaviour, FakeOpenAI
from tests.http.conftest import http_config

STREAM = {"model": "chat", "messages": [{"role": "user", "content": "hi"}], "stream": True}


async def test_a_stream_in_flight_finishes_during_the_grace(upstream: FakeOpenAI) -> None:
    hold = asyncio.Event()
    upstream.behaviour = Behaviour(content="one two three", hold=hold)
    # drain_delay_s: the port stays open, not ready, for a while before it closes.
    server = await build_server(parse_config(http_config(upstream, server=", drain_delay_s: 1")))
    await server.start()
    assert server.http is not None
    url = f"http://127.0.0.1:{server.http.port}"
    async with aiohttp.ClientSession() as s:
        r = await s.post(url + "/v1/chat/completions", json=STREAM)
        assert (await r.content.readline()).startswith(b"data: ")
        stopping = asyncio.create_task(server.stop(5))
        async with aiohttp.ClientSession() as other:
            # Readiness turns off as stop() begins, while the port is still open.
            while True:
                async with other.get(url + "/readyz") as probe:
                    if probe.status == 503:
                        break
                await asyncio.sleep(0.01)
            async with other.post(url + "/v1/chat/completions", json=STREAM) as refused:
                assert refused.status == 503
                assert (await refused.json())["error"]["code"] == "SHUTTING_DOWN"
        hold.set()
        rest = await r.content.read()
        r.close()
    await stopping
    assert rest.rstrip().endswith(b"data: [DONE]")
    assert upstream.completed_streams == 1


async def test_stop_without_grace_ends_the_stream_with_an_error_event_and_cuts_the_upstream(
    upstream: FakeOpenAI,
) -> None:
    hold = asyncio.Event()
    upstream.behaviour = Behaviour(content="one two three", hold=hold)
    server = await build_server(parse_config(http_config(upstream)))
    await server.start()
    assert server.http is not None
    url = f"http://127.0.0.1:{server.http.port}"
    async with aiohttp.ClientSession() as s:
        r = await s.post(url + "/v1/chat/completions", json=STREAM)
        assert (await r.content.readline()).startswith(b"data: ")
        await server.stop(0)
        rest = await r.content.read()
        r.close()
    # Not a bare cut: the client is told why, in the error object OpenAI clients read.
    assert b'"code": "SHUTTING_DOWN"' in rest or b'"code":"SHUTTING_DOWN"' in rest
    assert b"[DONE]" not in rest
    await upstream.wait_disconnect()
    assert upstream.completed_streams == 0
    hold.set()
