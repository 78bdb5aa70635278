"""Plain HTTP against the facade: SSE and NDJSON framing, the error object, limits, headers,
cancellation, probes and the OpenAPI document."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import orjson
import pytest

from tests.fakes import Behaviour, FakeOpenAI, Fault
from tests.http.conftest import KEY, HttpGateway, Start, http_config

HELLO = [{"role": "user", "content": "hello"}]


async def post(gw: HttpGateway, path: str, body: Any, **kwargs: Any) -> tuple[int, Any, Any]:
    async with aiohttp.ClientSession() as s, s.post(gw.url + path, json=body, **kwargs) as r:
        return r.status, r.headers, await r.read()


async def test_sse_framing(gw: HttpGateway, upstream: FakeOpenAI) -> None:
    upstream.behaviour = Behaviour(content="a b c")
    status, headers, raw = await post(
        gw, "/v1/chat/completions", {"model": "chat", "messages": HELLO, "stream": True}
    )
    assert status == 200
    assert headers["Content-Type"].startswith("text/event-stream")
    assert headers["x-llm-gateway-route"] == "chat"
    events = raw.decode().split("\n\n")
    assert events[-1] == ""
    assert events[-2] == "data: [DONE]"
    chunks = [orjson.loads(e.removeprefix("data: ")) for e in events[:-2]]
    assert all(e.startswith("data: ") for e in events[:-1])
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == "a b c"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    # Without stream_options.include_usage there is no usage chunk.
    assert all("usage" not in c for c in chunks)


async def test_ndjson_framing(gw: HttpGateway, upstream: FakeOpenAI) -> None:
    upstream.behaviour = Behaviour(content="a b c")
    # Ollama streams unless told otherwise.
    status, headers, raw = await post(gw, "/api/chat", {"model": "chat", "messages": HELLO})
    assert status == 200
    assert headers["Content-Type"].startswith("application/x-ndjson")
    lines = raw.decode().split("\n")
    assert lines[-1] == ""
    objects = [orjson.loads(line) for line in lines[:-1]]
    assert [o["done"] for o in objects] == [False] * (len(objects) - 1) + [True]
    last = objects[-1]
    for key in (
        "done_reason",
        "prompt_eval_count",
        "eval_count",
        "total_duration",
        "eval_duration",
        "prompt_eval_duration",
        "load_duration",
        "created_at",
    ):
        assert key in last


async def test_stream_error_before_first_chunk_is_an_http_error(
    gw: HttpGateway, upstream: FakeOpenAI
) -> None:
    upstream.behaviour = Behaviour(fault=Fault.HTTP_ERROR, status=500)
    status, headers, raw = await post(
        gw, "/v1/chat/completions", {"model": "chat", "messages": HELLO, "stream": True}
    )
    assert status == 503
    assert headers["Content-Type"].startswith("application/json")
    assert orjson.loads(raw)["error"]["code"] == "ALL_TARGETS_FAILED"


async def test_stream_cut_ends_with_error_event_not_done(
    gw: HttpGateway, upstream: FakeOpenAI
) -> None:
    upstream.behaviour = Behaviour(content="one two three four", fault=Fault.CUT_STREAM)
    status, _, raw = await post(
        gw, "/v1/chat/completions", {"model": "chat", "messages": HELLO, "stream": True}
    )
    assert status == 200
    events = [e for e in raw.decode().split("\n\n") if e]
    assert "data: [DONE]" not in events
    last = orjson.loads(events[-1].removeprefix("data: "))
    assert set(last["error"]) == {"message", "type", "param", "code"}
    assert last["error"]["code"] == "STREAM_INTERRUPTED"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "chat", "messages": []}, "messages"),
        ({"model": "chat"}, "messages"),
        ({"model": "chat", "messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role"),
        ({"model": "chat", "messages": HELLO, "temperature": 3}, "temperature"),
        ({"model": "chat", "messages": HELLO, "stop": ["a", "b", "c", "d", "e"]}, "stop"),
        (
            {"model": "chat", "messages": [{"role": "tool", "content": "x"}]},
            "messages[0].tool_call_id",
        ),
        (
            {
                "model": "chat",
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "image_url", "image_url": {"url": "ftp://x"}}],
                    }
                ],
            },
            "messages[0].content[0].image_url.url",
        ),
        (
            {
                "model": "chat",
                "messages": HELLO,
                "tool_choice": {"type": "function", "function": {"name": "missing"}},
            },
            "tool_choice.function.name",
        ),
        (
            {"model": "chat", "messages": HELLO, "response_format": {"type": "json_schema"}},
            "response_format.json_schema.schema",
        ),
    ],
)
async def test_bad_chat_fields_name_the_field(
    gw: HttpGateway, upstream: FakeOpenAI, body: dict[str, Any], param: str
) -> None:
    status, headers, raw = await post(gw, "/v1/chat/completions", body)
    assert status == 400
    error = orjson.loads(raw)["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["param"] == param
    assert error["code"] == "INVALID_FIELD"
    assert error["type"] == "invalid_request_error"
    assert param in error["message"]
    assert "Traceback" not in error["message"]
    assert headers["x-request-id"]
    assert upstream.requests == []


async def test_invalid_json_and_unknown_fields(gw: HttpGateway, upstream: FakeOpenAI) -> None:
    async with (
        aiohttp.ClientSession() as s,
        s.post(
            gw.url + "/v1/chat/completions",
            data=b"{not json",
            headers={"Content-Type": "application/json"},
        ) as r,
    ):
        assert r.status == 400
        assert (await r.json())["error"]["param"] == "body"
    status, _, _ = await post(
        gw,
        "/v1/chat/completions",
        {"model": "chat", "messages": HELLO, "user": "u1", "logprobs": False, "vendor_x": {"y": 1}},
    )
    assert status == 200


async def test_bad_privacy_header(gw: HttpGateway) -> None:
    status, _, raw = await post(
        gw,
        "/v1/chat/completions",
        {"model": "chat", "messages": HELLO},
        headers={"x-llm-gateway-privacy": "public"},
    )
    assert status == 400
    assert orjson.loads(raw)["error"]["param"] == "x-llm-gateway-privacy"


async def test_oversized_bodies_are_413(gw: HttpGateway, upstream: FakeOpenAI) -> None:
    big = {"model": "chat", "messages": [{"role": "user", "content": "x" * 300_000}]}
    status, _, raw = await post(gw, "/v1/chat/completions", big)
    assert status == 413
    assert orjson.loads(raw)["error"]["code"] == "REQUEST_TOO_LARGE"

    async def chunks() -> Any:  # no Content-Length: chunked transfer encoding
        yield orjson.dumps(big)

    async with aiohttp.ClientSession() as s, s.post(gw.url + "/api/chat", data=chunks()) as r:
        assert r.status == 413
        assert "error" in await r.json()
    status, _, raw = await post(
        gw,
        "/api/chat",
        {"model": "chat", "messages": [{"role": "user", "content": "x", "images": ["A" * 4000]}]},
    )
    assert status == 413
    assert upstream.requests == []


async def test_request_id_is_echoed_or_made(gw: HttpGateway) -> None:
    _, headers, raw = await post(
        gw,
        "/v1/chat/completions",
        {"model": "chat", "messages": HELLO},
        headers={"x-request-id": "abc-1"},
    )
    assert headers["x-request-id"] == "abc-1"
    assert orjson.loads(raw)["id"] == "chatcmpl-abc-1"
    _, headers, _ = await post(gw, "/v1/chat/completions", {"model": "nope", "messages": HELLO})
    assert len(headers["x-request-id"]) == 32


async def test_rate_limit_is_429_with_retry_after(start_http: Start, upstream: FakeOpenAI) -> None:
    gw = await start_http(http_config(upstream, secured=True, key_options=", rpm: 1"))
    auth = {"Authorization": f"Bearer {KEY}"}
    body = {"model": "chat", "messages": HELLO}
    first, _, _ = await post(gw, "/v1/chat/completions", body, headers=auth)
    status, headers, raw = await post(gw, "/v1/chat/completions", body, headers=auth)
    assert first == 200
    assert status == 429
    assert int(headers["Retry-After"]) >= 1
    assert orjson.loads(raw)["error"]["type"] == "rate_limit_error"
    # Ollama's surface: same status, Ollama's shape.
    status, headers, raw = await post(gw, "/api/chat", {**body, "stream": False}, headers=auth)
    assert status == 429
    assert isinstance(orjson.loads(raw)["error"], str)


async def test_missing_key_is_401_and_secret_free(start_http: Start, upstream: FakeOpenAI) -> None:
    gw = await start_http(http_config(upstream, secured=True))
    status, _, raw = await post(
        gw,
        "/v1/chat/completions",
        {"model": "chat", "messages": HELLO},
        headers={"Authorization": "Bearer sk-not-a-real-key-123456"},
    )
    assert status == 401
    assert b"sk-not-a-real-key" not in raw
    status, _, _ = await post(gw, "/v1/chat/completions", {"model": "chat", "messages": HELLO})
    assert status == 401


async def test_deadline_is_504(start_http: Start, upstream: FakeOpenAI) -> None:
    gw = await start_http(
        http_config(upstream, server=", default_deadline_s: 0.5, drain_delay_s: 0")
    )
    upstream.behaviour = Behaviour(fault=Fault.HANG)
    status, _, raw = await post(gw, "/v1/chat/completions", {"model": "chat", "messages": HELLO})
    assert status == 504
    assert orjson.loads(raw)["error"]["code"] == "DEADLINE_EXCEEDED"


async def test_client_disconnect_cancels_the_upstream(
    gw: HttpGateway, upstream: FakeOpenAI
) -> None:
    hold = asyncio.Event()
    upstream.behaviour = Behaviour(content="one two three", hold=hold)
    for path, body in (
        ("/v1/chat/completions", {"model": "chat", "messages": HELLO, "stream": True}),
        ("/api/chat", {"model": "chat", "messages": HELLO}),
    ):
        before = upstream.disconnects
        async with aiohttp.ClientSession() as s:
            r = await s.post(gw.url + path, json=body)
            first = await r.content.readline()
            assert first.strip()
            r.close()  # the client goes away with the stream held open upstream
        await upstream.wait_disconnect()
        assert upstream.disconnects == before + 1
        upstream._disconnected.clear()  # type: ignore[union-attr]
    assert upstream.completed_streams == 0
    hold.set()


async def test_unary_disconnect_cancels_the_upstream(gw: HttpGateway, upstream: FakeOpenAI) -> None:
    upstream.behaviour = Behaviour(fault=Fault.HANG)
    async with aiohttp.ClientSession() as s:
        task = asyncio.create_task(
            s.post(gw.url + "/v1/chat/completions", json={"model": "chat", "messages": HELLO})
        )
        while not upstream.requests:
            await asyncio.sleep(0.01)
        task.cancel()
    await upstream.wait_disconnect()


async def test_unknown_path_and_method(gw: HttpGateway) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.get(gw.url + "/v1/nothing") as r:
            assert r.status == 404
            assert (await r.json())["error"]["type"] == "not_found_error"
        async with s.get(gw.url + "/v1/chat/completions") as r:
            assert r.status == 405
            assert "error" in await r.json()


async def test_probes_health_and_openapi(gw: HttpGateway) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.get(gw.url + "/healthz") as r:
            assert r.status == 200
        async with s.get(gw.url + "/readyz") as r:
            assert r.status == 200
            assert (await r.json())["status"] == "SERVING"
        async with s.get(gw.url + "/health") as r:
            health = await r.json()
        async with s.get(gw.url + "/openapi.json") as r:
            doc = await r.json()
        async with s.get(gw.url + "/") as r:
            assert await r.text() == "Ollama is running"
        async with s.get(gw.url + "/api/version") as r:
            assert "version" in await r.json()
    assert health["status"] == "ok"
    assert {r["name"] for r in health["routes"]} == {"chat", "embedding"}
    assert health["targets"][0]["breaker_state"] == "closed"
    assert health["providers"][0]["locality"] == "local"
    assert doc["openapi"].startswith("3.")
    body = doc["paths"]["/v1/chat/completions"]["post"]["requestBody"]
    ref = body["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert "messages" in doc["components"]["schemas"][ref]["properties"]
    assert "/api/chat" in doc["paths"]


async def test_draining_refuses_calls_and_readiness(
    start_http: Start, upstream: FakeOpenAI
) -> None:
    gw = await start_http(http_config(upstream))
    assert gw.server.http is not None
    gw.server.http.drain()
    status, _, raw = await post(gw, "/v1/chat/completions", {"model": "chat", "messages": HELLO})
    assert status == 503
    assert orjson.loads(raw)["error"]["code"] == "SHUTTING_DOWN"
    async with aiohttp.ClientSession() as s, s.get(gw.url + "/readyz") as r:
        assert r.status == 503


async def test_health_needs_a_key_when_auth_is_on(start_http: Start, upstream: FakeOpenAI) -> None:
    gw = await start_http(http_config(upstream, secured=True))
    async with aiohttp.ClientSession() as s:
        async with s.get(gw.url + "/health") as r:
            assert r.status == 401
        async with s.get(gw.url + "/health", headers={"Authorization": f"Bearer {KEY}"}) as r:
            assert r.status == 200
        for probe in ("/healthz", "/readyz"):
            async with s.get(gw.url + probe) as r:
                assert r.status == 200


async def test_one_log_line_per_call_without_prompt_or_key(
    start_http: Start, upstream: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    caplog.set_level(logging.INFO, logger="llm_gateway.rpc")
    gw = await start_http(http_config(upstream, secured=True))
    secret_prompt = [{"role": "user", "content": "my secret prompt 42"}]
    for key in (KEY, "sk-wrong-key-987654"):
        await post(
            gw,
            "/v1/chat/completions",
            {"model": "chat", "messages": secret_prompt},
            headers={"Authorization": f"Bearer {key}", "x-request-id": f"log-{key[:6]}"},
        )
    lines = [r.fields for r in caplog.records if r.name == "llm_gateway.rpc"]  # type: ignore[attr-defined]
    ok = next(f for f in lines if f["request_id"] == f"log-{KEY[:6]}")
    assert (ok["method"], ok["route"], ok["provider"], ok["status"]) == (
        "Chat",
        "chat",
        "local",
        "OK",
    )
    refused = next(f for f in lines if f["request_id"] == "log-sk-wro")
    assert refused["status"] == "UNAUTHENTICATED"
    text = caplog.text + repr(lines)
    assert "my secret prompt" not in text
    assert "sk-wrong-key-987654" not in text
    assert KEY not in text


async def test_privacy_router_requests_work_as_they_did(
    gw: HttpGateway, upstream: FakeOpenAI
) -> None:
    # The request of the privacy router's README: no model, a task and a privacy mode.
    body = {
        "task": "chat",
        "privacy_mode": "strict",
        "messages": [{"role": "user", "content": "Resume este texto confidencial..."}],
        "temperature": 0.7,
        "max_tokens": 500,
    }
    status, headers, raw = await post(gw, "/v1/chat/completions", body)
    assert status == 200
    assert headers["x-llm-gateway-route"] == "chat"
    assert orjson.loads(raw)["choices"][0]["message"]["content"] == "Hello from the fake."
    status, _, raw = await post(gw, "/v1/embeddings", {"input": "x", "model": "embedding"})
    assert status == 200
    async with aiohttp.ClientSession() as s, s.get(gw.url + "/v1/models") as r:
        assert {m["id"] for m in (await r.json())["data"]} == {"chat", "embedding"}
