"""The openai Python SDK, unchanged, against the gateway's HTTP facade."""

from __future__ import annotations

import asyncio
import base64
import struct

import openai
import pytest

from tests.fakes import Behaviour, FakeOpenAI, FakeToolCall, Fault, fake_vector
from tests.http.conftest import KEY, HttpGateway, Start, http_config

HELLO = [{"role": "user", "content": "hello"}]


def client(gw: HttpGateway, key: str = "unused") -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=gw.openai_base, api_key=key, max_retries=0)


async def test_chat_completion(gw: HttpGateway, upstream: FakeOpenAI) -> None:
    upstream.behaviour = Behaviour(content="Paris.", reasoning="The capital.")
    async with client(gw) as c:
        raw = await c.chat.completions.with_raw_response.create(
            model="chat",
            messages=HELLO,
            temperature=0.2,
            max_completion_tokens=50,
            seed=7,
            stop=["\n\n"],
            extra_headers={"x-request-id": "req-123"},
        )
    answer = raw.parse()
    assert answer.choices[0].message.content == "Paris."
    assert answer.choices[0].message.model_extra["reasoning_content"] == "The capital."
    assert answer.choices[0].finish_reason == "stop"
    assert answer.usage is not None and answer.usage.prompt_tokens == 11
    assert answer.usage.completion_tokens == 7
    assert raw.headers["x-request-id"] == "req-123"
    assert raw.headers["x-llm-gateway-route"] == "chat"
    assert raw.headers["x-llm-gateway-provider"] == "local"
    assert raw.headers["x-llm-gateway-model"] == "m1"
    assert raw.headers["x-llm-gateway-attempts"] == "1"
    assert raw.headers["x-llm-gateway-cache"] == "miss"
    sent = upstream.last_request.json
    assert sent["model"] == "m1"
    assert sent["temperature"] == 0.2
    assert sent["max_tokens"] == 50 or sent.get("max_completion_tokens") == 50
    assert sent["seed"] == 7
    assert sent["stop"] == ["\n\n"]


async def test_sync_client(gw: HttpGateway, upstream: FakeOpenAI) -> None:
    upstream.behaviour = Behaviour(content="one two three")

    def use() -> tuple[str, str]:
        with openai.OpenAI(base_url=gw.openai_base, api_key="x", max_retries=0) as c:
            whole = c.chat.completions.create(model="chat", messages=HELLO)
            pieces = [
                chunk.choices[0].delta.content or ""
                for chunk in c.chat.completions.create(model="chat", messages=HELLO, stream=True)
                if chunk.choices
            ]
        return whole.choices[0].message.content or "", "".join(pieces)

    # The sync client blocks its thread; the gateway runs on this test's event loop.
    whole, streamed = await asyncio.to_thread(use)
    assert whole == "one two three"
    assert streamed == "one two three"


async def test_stream_with_usage(gw: HttpGateway, upstream: FakeOpenAI) -> None:
    upstream.behaviour = Behaviour(content="a b c d", reasoning="think")
    async with client(gw) as c:
        stream = await c.chat.completions.create(
            model="chat", messages=HELLO, stream=True, stream_options={"include_usage": True}
        )
        chunks = [chunk async for chunk in stream]
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    reasoning = "".join(
        (ch.choices[0].delta.model_extra or {}).get("reasoning_content", "")
        for ch in chunks
        if ch.choices
    )
    assert text == "a b c d"
    assert reasoning == "think"
    finishes = [ch.choices[0].finish_reason for ch in chunks if ch.choices]
    assert finishes[-1] == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 7
    assert len({ch.id for ch in chunks}) == 1


async def test_tools_and_tool_choice(gw: HttpGateway, upstream: FakeOpenAI) -> None:
    upstream.behaviour = Behaviour(
        content="", tool_calls=[FakeToolCall("get_weather", {"city": "Paris"}, id="call_9")]
    )
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather for a city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    async with client(gw) as c:
        answer = await c.chat.completions.create(
            model="chat",
            messages=HELLO,
            tools=tools,  # type: ignore[arg-type]
            tool_choice={"type": "function", "function": {"name": "get_weather"}},
        )
        stream = await c.chat.completions.create(
            model="chat",
            messages=HELLO,
            tools=tools,
            stream=True,  # type: ignore[arg-type]
        )
        fragments = [ch async for ch in stream]
    call = answer.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert (call.id, call.function.name) == ("call_9", "get_weather")  # type: ignore[union-attr]
    assert call.function.arguments.replace(" ", "") == '{"city":"Paris"}'  # type: ignore[union-attr]
    assert answer.choices[0].finish_reason == "tool_calls"
    sent = upstream.requests[0].json
    assert sent["tools"][0]["function"]["name"] == "get_weather"
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    args = "".join(
        tc.function.arguments or ""
        for ch in fragments
        if ch.choices
        for tc in ch.choices[0].delta.tool_calls or ()
        if tc.function is not None
    )
    assert args.replace(" ", "") == '{"city":"Paris"}'
    assert [ch.choices[0].finish_reason for ch in fragments if ch.choices][-1] == "tool_calls"


async def test_response_format_json_schema(gw: HttpGateway, upstream: FakeOpenAI) -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    async with client(gw) as c:
        await c.chat.completions.create(
            model="chat",
            messages=HELLO,
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "answer", "schema": schema, "strict": True},
            },
            reasoning_effort="low",
        )
    sent = upstream.last_request.json
    assert sent["response_format"]["type"] == "json_schema"
    assert sent["response_format"]["json_schema"]["schema"] == schema
    assert sent["reasoning_effort"] == "low"


async def test_image_parts_reach_the_upstream(gw: HttpGateway, upstream: FakeOpenAI) -> None:
    parts = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
    ]
    async with client(gw) as c:
        await c.chat.completions.create(
            model="chat",
            messages=[{"role": "user", "content": parts}],  # type: ignore[list-item]
        )
    content = upstream.last_request.json["messages"][0]["content"]
    urls = [p["image_url"]["url"] for p in content if p["type"] == "image_url"]
    assert urls == ["https://example.com/cat.png", "data:image/png;base64,iVBORw0KGgo="]


async def test_embeddings_float_and_base64(gw: HttpGateway, upstream: FakeOpenAI) -> None:
    async with client(gw) as c:
        floats = await c.embeddings.create(
            model="embedding", input=["a", "b"], encoding_format="float"
        )
        # The SDK asks for base64 by default and decodes it itself.
        default = await c.embeddings.create(model="embedding", input="a")
    assert [d.embedding for d in floats.data] == [fake_vector("a"), fake_vector("b")]
    assert default.data[0].embedding == pytest.approx(fake_vector("a"), abs=1e-6)
    assert floats.usage.prompt_tokens >= 0


async def test_base64_is_little_endian_float32(gw: HttpGateway) -> None:
    import aiohttp

    async with (
        aiohttp.ClientSession() as s,
        s.post(
            f"{gw.openai_base}/embeddings",
            json={"model": "embedding", "input": "a", "encoding_format": "base64"},
        ) as r,
    ):
        body = await r.json()
    raw = base64.b64decode(body["data"][0]["embedding"])
    assert list(struct.unpack(f"<{len(raw) // 4}f", raw)) == pytest.approx(fake_vector("a"))


async def test_models(gw: HttpGateway) -> None:
    async with client(gw) as c:
        models = [m.id async for m in c.models.list()]
        one = await c.models.retrieve("chat")
        with pytest.raises(openai.NotFoundError):
            await c.models.retrieve("nope")
    assert models == ["chat", "embedding"]
    assert one.id == "chat"


async def test_unknown_route_is_not_found(gw: HttpGateway, upstream: FakeOpenAI) -> None:
    async with client(gw) as c:
        with pytest.raises(openai.NotFoundError) as caught:
            await c.chat.completions.create(model="nope", messages=HELLO)
    assert caught.value.code == "ROUTE_NOT_FOUND"
    assert upstream.requests == []


async def test_empty_messages_is_bad_request(gw: HttpGateway, upstream: FakeOpenAI) -> None:
    async with client(gw) as c:
        with pytest.raises(openai.BadRequestError) as caught:
            await c.chat.completions.create(model="chat", messages=[])
    assert caught.value.code == "INVALID_FIELD"
    assert caught.value.param == "messages"
    assert upstream.requests == []


async def test_wrong_key_is_authentication_error(start_http: Start, upstream: FakeOpenAI) -> None:
    gw = await start_http(http_config(upstream, secured=True))
    async with client(gw, "wrong") as c:
        with pytest.raises(openai.AuthenticationError):
            await c.chat.completions.create(model="chat", messages=HELLO)
    async with client(gw, KEY) as c:
        answer = await c.chat.completions.create(model="chat", messages=HELLO)
    assert answer.choices[0].message.content == "Hello from the fake."


async def test_strict_on_a_cloud_only_route_is_refused(
    start_http: Start, upstream: FakeOpenAI, cloud: FakeOpenAI
) -> None:
    gw = await start_http(http_config(upstream, cloud))
    async with client(gw) as c:
        with pytest.raises(openai.APIStatusError) as caught:
            await c.chat.completions.create(
                model="cloudy", messages=HELLO, extra_headers={"x-llm-gateway-privacy": "strict"}
            )
        assert 400 <= caught.value.status_code < 500
        # The privacy router's body field works too, and flexible reaches the cloud.
        with pytest.raises(openai.APIStatusError):
            await c.chat.completions.create(
                model="cloudy", messages=HELLO, extra_body={"privacy_mode": "strict"}
            )
        answer = await c.chat.completions.create(
            model="cloudy", messages=HELLO, extra_body={"privacy": "flexible"}
        )
    assert answer.choices[0].message.content
    assert len(cloud.requests) == 1


async def test_failing_upstream_is_a_server_error(gw: HttpGateway, upstream: FakeOpenAI) -> None:
    upstream.behaviour = Behaviour(fault=Fault.HTTP_ERROR, status=500)
    async with client(gw) as c:
        with pytest.raises(openai.InternalServerError) as caught:
            await c.chat.completions.create(model="chat", messages=HELLO)
    assert caught.value.status_code == 503
    assert caught.value.code == "ALL_TARGETS_FAILED"


async def test_stream_cut_after_first_chunk_raises(gw: HttpGateway, upstream: FakeOpenAI) -> None:
    upstream.behaviour = Behaviour(content="one two three four", fault=Fault.CUT_STREAM)
    async with client(gw) as c:
        stream = await c.chat.completions.create(model="chat", messages=HELLO, stream=True)
        with pytest.raises(openai.APIError) as caught:
            async for _ in stream:
                pass
    # The SDK raises the error event's object: the same one a failed unary call gets.
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["code"] == "STREAM_INTERRUPTED"
    assert caught.value.body["type"] == "service_unavailable_error"
