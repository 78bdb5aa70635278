"""The ollama Python client, unchanged, against the gateway's Ollama surface."""

from __future__ import annotations

import base64

import ollama
import pytest

from tests.fakes import Behaviour, FakeOpenAI, FakeToolCall, Fault, fake_vector
from tests.http.conftest import KEY, HttpGateway, Start, http_config

HELLO = [{"role": "user", "content": "hello"}]
# The smallest PNG header is enough: the gateway sniffs the type and passes the bytes on.
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 16).decode()


def client(gw: HttpGateway, **kwargs: object) -> ollama.AsyncClient:
    return ollama.AsyncClient(host=gw.url, **kwargs)  # type: ignore[arg-type]


async def test_chat(gw: HttpGateway, upstream: FakeOpenAI) -> None:
    upstream.behaviour = Behaviour(content="Paris.", reasoning="The capital.")
    answer = await client(gw).chat(
        model="chat",
        messages=HELLO,
        options={
            "temperature": 0.1,
            "top_p": 0.9,
            "num_predict": 20,
            "seed": 3,
            "stop": ["x"],
            "top_k": 40,
            "num_ctx": 4096,
        },
        keep_alive="5m",
        think=True,
    )
    assert answer.message.content == "Paris."
    assert answer.message.thinking == "The capital."
    assert answer.done is True
    assert answer.done_reason == "stop"
    assert answer.prompt_eval_count == 11
    assert answer.eval_count == 7
    assert answer.total_duration is not None and answer.total_duration > 0
    sent = upstream.last_request.json
    assert sent["model"] == "m1"
    assert (sent["temperature"], sent["top_p"], sent["seed"], sent["stop"]) == (0.1, 0.9, 3, ["x"])
    assert sent.get("max_tokens", sent.get("max_completion_tokens")) == 20


async def test_chat_stream_is_ndjson_ending_with_done(
    gw: HttpGateway, upstream: FakeOpenAI
) -> None:
    upstream.behaviour = Behaviour(content="one two three")
    parts = [p async for p in await client(gw).chat(model="chat", messages=HELLO, stream=True)]
    assert "".join(p.message.content or "" for p in parts) == "one two three"
    assert [p.done for p in parts].count(True) == 1
    assert parts[-1].done and parts[-1].done_reason == "stop"
    assert parts[-1].eval_count == 7


async def test_think_false_hides_reasoning(gw: HttpGateway, upstream: FakeOpenAI) -> None:
    upstream.behaviour = Behaviour(content="A.", reasoning="secret thoughts")
    answer = await client(gw).chat(model="chat", messages=HELLO, think=False)
    assert answer.message.thinking is None
    assert answer.message.content == "A."


async def test_tools_and_images(gw: HttpGateway, upstream: FakeOpenAI) -> None:
    upstream.behaviour = Behaviour(content="", tool_calls=[FakeToolCall("add", {"a": 1, "b": 2})])

    def add(a: int, b: int) -> int:
        """Add two numbers.

        Args:
          a: The first.
          b: The second.
        """
        return a + b

    messages = [{"role": "user", "content": "what is in it?", "images": [PNG]}]
    answer = await client(gw).chat(model="chat", messages=messages, tools=[add])
    call = answer.message.tool_calls[0]  # type: ignore[index]
    assert call.function.name == "add"
    assert dict(call.function.arguments) == {"a": 1, "b": 2}
    sent = upstream.last_request.json
    assert sent["tools"][0]["function"]["name"] == "add"
    content = sent["messages"][0]["content"]
    image = next(p for p in content if p["type"] == "image_url")
    assert image["image_url"]["url"].startswith("data:image/png;base64,")
    # The tool result goes back with the id the gateway gave the call.
    history = [
        *messages,
        answer.message,
        {"role": "tool", "content": "3", "tool_name": "add"},
    ]
    upstream.behaviour = Behaviour(content="It is 3.")
    final = await client(gw).chat(model="chat", messages=history, tools=[add])
    assert final.message.content == "It is 3."
    replay = upstream.last_request.json["messages"]
    assert replay[1]["tool_calls"][0]["id"] == replay[2]["tool_call_id"]


async def test_streamed_tool_calls_arrive_whole(gw: HttpGateway, upstream: FakeOpenAI) -> None:
    upstream.behaviour = Behaviour(content="", tool_calls=[FakeToolCall("add", {"a": 1, "b": 2})])
    parts = [
        p
        async for p in await client(gw).chat(
            model="chat",
            messages=HELLO,
            stream=True,
            tools=[{"type": "function", "function": {"name": "add", "parameters": {}}}],
        )
    ]
    calls = [c for p in parts for c in p.message.tool_calls or ()]
    assert [(c.function.name, dict(c.function.arguments)) for c in calls] == [
        ("add", {"a": 1, "b": 2})
    ]
    assert parts[-1].done


async def test_format_json_and_schema(gw: HttpGateway, upstream: FakeOpenAI) -> None:
    await client(gw).chat(model="chat", messages=HELLO, format="json")
    assert upstream.last_request.json["response_format"] == {"type": "json_object"}
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    await client(gw).chat(model="chat", messages=HELLO, format=schema)
    sent = upstream.last_request.json["response_format"]
    assert sent["type"] == "json_schema"
    assert sent["json_schema"]["schema"] == schema


async def test_generate(gw: HttpGateway, upstream: FakeOpenAI) -> None:
    upstream.behaviour = Behaviour(content="a haiku")
    answer = await client(gw).generate(model="chat", prompt="write", system="be brief")
    assert answer.response == "a haiku"
    assert answer.done and answer.done_reason == "stop"
    sent = upstream.last_request.json["messages"]
    assert [m["role"] for m in sent] == ["system", "user"]
    await client(gw).generate(model="chat", prompt="what is it?", images=[PNG], think="high")
    sent = upstream.last_request.json
    assert sent["reasoning_effort"] == "high"
    parts = sent["messages"][0]["content"]
    assert [p["type"] for p in parts] == ["text", "image_url"]
    streamed = [p async for p in await client(gw).generate(model="chat", prompt="w", stream=True)]
    assert "".join(p.response or "" for p in streamed) == "a haiku"
    assert streamed[-1].done


async def test_generate_without_prompt_only_loads(gw: HttpGateway, upstream: FakeOpenAI) -> None:
    answer = await client(gw).generate(model="chat")
    assert answer.done_reason == "load"
    assert upstream.requests == []


async def test_embed_and_embeddings(gw: HttpGateway) -> None:
    many = await client(gw).embed(model="embedding", input=["a", "b"])
    one = await client(gw).embed(model="embedding", input="a")
    old = await client(gw).embeddings(model="embedding", prompt="a")
    assert [list(v) for v in many.embeddings] == [fake_vector("a"), fake_vector("b")]
    assert [list(v) for v in one.embeddings] == [fake_vector("a")]
    assert list(old.embedding) == fake_vector("a")


async def test_list_show_ps(gw: HttpGateway) -> None:
    c = client(gw)
    listed = await c.list()
    assert [m.model for m in listed.models] == ["chat", "embedding"]
    shown = await c.show("embedding")
    assert shown.capabilities == ["embedding"]
    running = await c.ps()
    assert {m.model for m in running.models} == {"chat", "embedding"}
    with pytest.raises(ollama.ResponseError) as caught:
        await c.show("nope")
    assert caught.value.status_code == 404


async def test_errors_are_response_errors(gw: HttpGateway, upstream: FakeOpenAI) -> None:
    with pytest.raises(ollama.ResponseError) as caught:
        await client(gw).chat(model="nope", messages=HELLO)
    assert caught.value.status_code == 404
    assert "nope" in caught.value.error
    upstream.behaviour = Behaviour(fault=Fault.HTTP_ERROR, status=500)
    with pytest.raises(ollama.ResponseError) as failed:
        await client(gw).chat(model="chat", messages=HELLO)
    assert failed.value.status_code == 503


async def test_stream_cut_ends_with_an_error_line(gw: HttpGateway, upstream: FakeOpenAI) -> None:
    upstream.behaviour = Behaviour(content="one two three four", fault=Fault.CUT_STREAM)
    seen = []

    async def read() -> None:
        async for part in await client(gw).chat(model="chat", messages=HELLO, stream=True):
            seen.append(part)

    with pytest.raises(ollama.ResponseError) as caught:
        await read()
    assert seen and not any(p.done for p in seen)
    assert "after the answer had started" in caught.value.error


async def test_key_in_headers(start_http: Start, upstream: FakeOpenAI) -> None:
    gw = await start_http(http_config(upstream, secured=True))
    with pytest.raises(ollama.ResponseError) as caught:
        await client(gw).chat(model="chat", messages=HELLO)
    assert caught.value.status_code == 401
    answer = await client(gw, headers={"Authorization": f"Bearer {KEY}"}).chat(
        model="chat", messages=HELLO
    )
    assert answer.message.content


async def test_chat_without_messages_only_loads(gw: HttpGateway, upstream: FakeOpenAI) -> None:
    answer = await client(gw).chat(model="chat", messages=[])
    assert answer.done_reason == "load"
    assert upstream.requests == []


async def test_no_model_uses_the_default_route_and_names_it(gw: HttpGateway) -> None:
    import aiohttp  # the ollama client insists on a model; plain HTTP does not

    async with aiohttp.ClientSession() as s:
        body = {"messages": HELLO, "stream": False}
        async with s.post(gw.url + "/api/chat", json=body) as r:
            assert (await r.json())["model"] == "chat"
        async with s.post(gw.url + "/api/chat", json={"messages": HELLO}) as r:
            lines = (await r.read()).splitlines()
    assert all(b'"model":"chat"' in line for line in lines)
