"""Keys, privacy ceilings and the cache through a real server (issue: callers, keys, cache)."""

from __future__ import annotations

import hashlib

import grpc
import pytest

from llmgateway.v1 import chat_pb2, common_pb2, stats_pb2
from tests.fakes import FakeOpenAI
from tests.service.conftest import Start
from tests.service.test_validation import error_info


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _config(local: FakeOpenAI, cloud: FakeOpenAI) -> str:
    return f"""
server: {{listen: '127.0.0.1:0', drain_delay_s: 0}}
providers:
  local: {{kind: openai_compatible, api_base: '{local.base_url}', locality: local, retry: {{max_attempts: 1}}, probe: {{enabled: false}}}}
  cloud: {{kind: openai_compatible, api_base: '{cloud.base_url}', locality: cloud, retry: {{max_attempts: 1}}}}
routes:
  chat:
    task: chat
    max_privacy: flexible
    targets: [{{provider: local, model: small}}, {{provider: cloud, model: big}}]
auth:
  enabled: true
  keys:
    - {{name: team-a, sha256: '{_digest("key-a")}', max_privacy: flexible}}
    - {{name: private, sha256: '{_digest("key-private")}', max_privacy: strict}}
telemetry: {{metrics_listen: ''}}
"""


def _chat(**kwargs: object) -> chat_pb2.ChatRequest:
    return chat_pb2.ChatRequest(
        messages=[chat_pb2.Message(role=chat_pb2.ROLE_USER, content="hello")],
        **kwargs,  # type: ignore[arg-type]
    )


def _key(key: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {key}"),)


@pytest.fixture
async def cloud() -> FakeOpenAI:
    async with FakeOpenAI() as fake:
        yield fake  # type: ignore[misc]


async def test_unauthenticated_calls_are_refused(
    start_gateway: Start, upstream: FakeOpenAI, cloud: FakeOpenAI
) -> None:
    gw = await start_gateway(_config(upstream, cloud))
    for metadata, reason in (((), "API_KEY_MISSING"), (_key("wrong"), "API_KEY_INVALID")):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await gw.stub.Chat(_chat(), timeout=5, metadata=metadata)
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert error_info(caught.value).reason == reason
    answer = await gw.stub.Chat(_chat(), timeout=5, metadata=(("x-api-key", "key-a"),))
    assert answer.provider == "local"
    assert upstream.requests and "key-a" not in str(upstream.last_request.headers)


async def test_key_limited_to_strict_never_reaches_the_cloud(
    start_gateway: Start, upstream: FakeOpenAI, cloud: FakeOpenAI
) -> None:
    gw = await start_gateway(_config(upstream, cloud))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await gw.stub.Chat(
            _chat(privacy=common_pb2.PRIVACY_FLEXIBLE), timeout=5, metadata=_key("key-private")
        )
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error_info(caught.value).reason == "PRIVACY_NOT_PERMITTED"
    await upstream.refuse()  # the local target is down: fallback must still stay local
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await gw.stub.Chat(_chat(), timeout=5, metadata=_key("key-private"))
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert cloud.requests == []
    # The same request from a FLEXIBLE key falls back to the cloud.
    answer = await gw.stub.Chat(
        _chat(privacy=common_pb2.PRIVACY_FLEXIBLE), timeout=5, metadata=_key("key-a")
    )
    assert answer.provider == "cloud"
    assert len(answer.attempts) == 2


async def test_temperature_zero_is_served_from_the_cache(
    start_gateway: Start, upstream: FakeOpenAI, cloud: FakeOpenAI
) -> None:
    gw = await start_gateway(_config(upstream, cloud))
    first = await gw.stub.Chat(_chat(temperature=0), timeout=5, metadata=_key("key-a"))
    second = await gw.stub.Chat(_chat(temperature=0), timeout=5, metadata=_key("key-a"))
    assert (first.cached, second.cached) == (False, True)
    assert second.content == first.content
    assert len(upstream.requests) == 1
    streamed = [
        m
        async for m in gw.stub.StreamChat(
            chat_pb2.StreamChatRequest(messages=_chat().messages, temperature=0),
            timeout=5,
            metadata=_key("key-a"),
        )
    ]
    assert "".join(m.delta.content for m in streamed[:-1]) == first.content
    assert streamed[-1].summary.cached
    assert len(upstream.requests) == 1
    # Another tenant has its own cache scope; temperature unset is not cached.
    await gw.stub.Chat(_chat(temperature=0), timeout=5, metadata=_key("key-private"))
    await gw.stub.Chat(_chat(), timeout=5, metadata=_key("key-a"))
    await gw.stub.Chat(_chat(), timeout=5, metadata=_key("key-a"))
    assert len(upstream.requests) == 4
    stats = await gw.stub.GetStats(stats_pb2.GetStatsRequest(), timeout=5, metadata=_key("key-a"))
    assert {s.tenant for s in stats.stats} == {"team-a"}
    (row,) = stats.stats
    assert (row.requests, row.cache_hits) == (5, 2)
