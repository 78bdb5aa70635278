"""The cache rule, the cache key and the in-memory LRU with TTL."""

from __future__ import annotations

import pytest

from llm_gateway_server.config.cache import CacheConfig
from llm_gateway_server.core.types import (
    ANONYMOUS,
    CacheControl,
    CacheMode,
    ChatAnswer,
    ChatRequest,
    FinishReason,
    ImagePart,
    Message,
    Principal,
    Role,
    Sampling,
    Tool,
    ToolCall,
    Usage,
)
from llm_gateway_server.state.response_cache import (
    MemoryResponseCache,
    cache_key,
    decode_entry,
    encode_entry,
    is_cacheable,
    is_storable,
    new_entry,
)


def chat(
    text: str = "hi",
    *,
    temperature: float | None = 0.0,
    mode: CacheMode = CacheMode.DEFAULT,
    **fields: object,
) -> ChatRequest:
    return ChatRequest(
        messages=(Message(Role.USER, text),),
        sampling=Sampling(temperature=temperature),
        cache=CacheControl(mode),
        **fields,  # type: ignore[arg-type]
    )


ON = CacheConfig()


@pytest.mark.parametrize(
    ("temperature", "mode", "expected"),
    [
        (0.0, CacheMode.DEFAULT, True),
        (None, CacheMode.DEFAULT, False),
        (0.7, CacheMode.DEFAULT, False),
        (0.7, CacheMode.ENABLED, True),
        (None, CacheMode.ENABLED, True),
        (0.0, CacheMode.BYPASS, False),
    ],
)
def test_only_requests_that_should_repeat_are_cacheable(
    temperature: float | None, mode: CacheMode, expected: bool
) -> None:
    assert is_cacheable(chat(temperature=temperature, mode=mode), ON) is expected


def test_nothing_is_cacheable_with_the_cache_off() -> None:
    off = CacheConfig(enabled=False)
    assert not is_cacheable(chat(mode=CacheMode.ENABLED), off)


def key(
    request: ChatRequest, *, route: str = "chat", tenant: str = "a", shared: bool = False
) -> str:
    return cache_key(request, route=route, principal=Principal(tenant=tenant), shared=shared)


def test_key_is_stable_and_ignores_cache_control_and_metadata() -> None:
    base = key(chat())
    assert key(chat()) == base
    assert key(chat(mode=CacheMode.ENABLED, metadata={"x": "y"})) == base
    assert len(base) == 32


def test_key_changes_with_what_shapes_the_answer() -> None:
    base = key(chat())
    variants = [
        key(chat("hello")),
        key(chat(temperature=0.1)),
        key(chat(), route="other"),
        key(chat(tools=(Tool("f", parameters={"type": "object"}),))),
        key(chat(model="local/x")),
        key(
            ChatRequest(
                messages=(Message(Role.USER, "hi"),), sampling=Sampling(temperature=0, seed=1)
            )
        ),
    ]
    assert base not in variants
    assert len(set(variants)) == len(variants)


def test_key_is_scoped_per_tenant_unless_shared() -> None:
    assert key(chat(), tenant="a") != key(chat(), tenant="b")
    assert key(chat(), tenant="a", shared=True) == key(chat(), tenant="b", shared=True)


def test_tool_schema_key_order_does_not_matter() -> None:
    one = chat(tools=(Tool("f", parameters={"a": 1, "b": {"c": 2, "d": 3}}),))
    two = chat(tools=(Tool("f", parameters={"b": {"d": 3, "c": 2}, "a": 1}),))
    assert key(one) == key(two)


def test_inline_image_bytes_enter_the_key() -> None:
    def with_image(data: bytes) -> ChatRequest:
        message = Message(Role.USER, parts=(ImagePart(data=data, mime_type="image/png"),))
        return ChatRequest(messages=(message,), sampling=Sampling(temperature=0))

    assert key(with_image(b"\x89PNG1")) != key(with_image(b"\x89PNG2"))
    assert key(with_image(b"\x89PNG1")) == key(with_image(b"\x89PNG1"))


def test_only_complete_answers_are_storable() -> None:
    assert is_storable(ChatAnswer("ok"), ON)
    assert is_storable(ChatAnswer("", tool_calls=(ToolCall("1", "f", "{}"),)), ON)
    assert not is_storable(ChatAnswer(""), ON)
    assert not is_storable(ChatAnswer("x", finish_reason=FinishReason.ERROR), ON)
    assert not is_storable(ChatAnswer("x", finish_reason=FinishReason.CONTENT_FILTER), ON)
    assert not is_storable(ChatAnswer("x" * 11), CacheConfig(max_entry_bytes=10))


def test_entries_round_trip_through_their_encoding() -> None:
    answer = ChatAnswer(
        "hello",
        reasoning_content="thought",
        tool_calls=(ToolCall("c1", "f", '{"a": 1}'),),
        finish_reason=FinishReason.TOOL_CALLS,
        usage=Usage(3, 4, 1, 2),
        model="m-2024",
    )
    entry = new_entry(answer, provider="p", model="m", route="chat")
    assert decode_entry(encode_entry(entry)) == entry


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_memory_cache_expires_entries_at_their_own_ttl() -> None:
    clock = FakeClock()
    cache = MemoryResponseCache(10, timer=clock)
    entry = new_entry(ChatAnswer("a"), provider="p", model="m", route="chat")
    await cache.put("short", entry, 5)
    await cache.put("long", entry, 50)
    clock.now += 10
    assert await cache.get("short") is None
    assert await cache.get("long") == entry
    clock.now += 50
    assert await cache.get("long") is None


async def test_memory_cache_drops_the_least_recently_used() -> None:
    cache = MemoryResponseCache(2)
    entry = new_entry(ChatAnswer("a"), provider="p", model="m", route="chat")
    await cache.put("one", entry, 60)
    await cache.put("two", entry, 60)
    assert await cache.get("one") is not None  # "two" is now the least recently used
    await cache.put("three", entry, 60)
    assert await cache.get("two") is None
    assert await cache.get("one") is not None
    assert await cache.get("three") is not None
    assert len(cache) == 2


def test_anonymous_is_a_tenant_like_any_other() -> None:
    anonymous = cache_key(chat(), route="chat", principal=ANONYMOUS, shared=False)
    assert anonymous != key(chat(), tenant="a")
