"""The response cache: exact match on the normalized request.

Caching rule (``CacheConfig`` and ``ChatRequest.cache``):

- ``cache.mode`` BYPASS: the cache is neither read nor written for this request.
- ``cache.mode`` ENABLED: read and written whatever the sampling parameters.
- ``cache.mode`` DEFAULT: read and written only when ``temperature`` is explicitly 0
  (an unset temperature means the model's default, which is usually not 0): only
  requests that should repeat are answered from the cache.
- Only complete answers are stored (finish reason stop, length or tool calls, not empty).
- An entry lives ``cache.ttl_s`` seconds, or the request's ``cache.ttl`` when set
  (a TTL of 0 stores nothing).
- The key covers the route, the requested model, the privacy asked for, the messages,
  the sampling parameters, tools, tool choice, response format and provider options; it
  is scoped to the tenant unless ``cache.shared_across_tenants``. Request metadata is not
  part of it.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any, Protocol, cast

import orjson
from cachetools import TLRUCache
from redis.asyncio import Redis

from llm_gateway_server.config.cache import CacheConfig
from llm_gateway_server.core.types import (
    CacheMode,
    ChatAnswer,
    ChatRequest,
    FinishReason,
    Principal,
    ToolCall,
    Usage,
)
from llm_gateway_server.state.redis_health import RedisHealth, guarded
from llm_gateway_server.state.views import CachedAnswer

_STORABLE = frozenset({FinishReason.STOP, FinishReason.LENGTH, FinishReason.TOOL_CALLS})


def is_cacheable(request: ChatRequest, config: CacheConfig) -> bool:
    """Whether the cache is read and written for this request (see the module docstring)."""
    if not config.enabled:
        return False
    mode = request.cache.mode
    if mode is CacheMode.BYPASS:
        return False
    return mode is CacheMode.ENABLED or request.sampling.temperature == 0


def is_storable(answer: ChatAnswer, config: CacheConfig) -> bool:
    """Whether an answer is complete and small enough to store."""
    if answer.is_empty or answer.finish_reason not in _STORABLE:
        return False
    return len(answer.content) + len(answer.reasoning_content) <= config.max_entry_bytes


def _bytes_digest(value: object) -> str:
    # Inline image bytes enter the key as a digest, not verbatim.
    if isinstance(value, bytes):
        return hashlib.blake2b(value, digest_size=16).hexdigest()
    raise TypeError(type(value).__name__)


def cache_key(request: ChatRequest, *, route: str, principal: Principal, shared: bool) -> str:
    """A 128-bit hex digest of the normalized request (orjson + BLAKE2b: microseconds)."""
    normalized = (
        "" if shared else principal.tenant,
        principal.max_privacy,
        route,
        request.model,
        request.privacy,
        request.messages,
        request.sampling,
        request.tools,
        request.tool_choice,
        request.response_format,
        request.provider_options,
    )
    payload = orjson.dumps(normalized, default=_bytes_digest, option=orjson.OPT_SORT_KEYS)
    return hashlib.blake2b(payload, digest_size=16).hexdigest()


def encode_entry(entry: CachedAnswer) -> bytes:
    """Serialize an entry for Redis."""
    return orjson.dumps(entry)


def decode_entry(raw: bytes) -> CachedAnswer:
    """Inverse of ``encode_entry``."""
    data = orjson.loads(raw)
    answer: dict[str, Any] = data["answer"]
    usage: dict[str, int] = answer["usage"]
    return CachedAnswer(
        answer=ChatAnswer(
            content=answer["content"],
            reasoning_content=answer["reasoning_content"],
            tool_calls=tuple(ToolCall(**call) for call in answer["tool_calls"]),
            finish_reason=FinishReason(answer["finish_reason"]),
            usage=Usage(**usage),
            model=answer["model"],
        ),
        provider=data["provider"],
        model=data["model"],
        route=data["route"],
        stored_at=data["stored_at"],
    )


class ResponseCache(Protocol):
    """Where answers are kept; memory or Redis."""

    async def get(self, key: str) -> CachedAnswer | None:
        """The entry under ``key``, or ``None``."""
        ...

    async def put(self, key: str, entry: CachedAnswer, ttl_s: float) -> None:
        """Store ``entry`` for ``ttl_s`` seconds."""
        ...


def _expires(_key: str, value: tuple[CachedAnswer, float], now: float) -> float:
    return now + value[1]


class MemoryResponseCache:
    """LRU with a per-entry TTL (cachetools ``TLRUCache``)."""

    def __init__(self, max_entries: int, *, timer: Callable[[], float] = time.monotonic) -> None:
        self._entries: TLRUCache[str, tuple[CachedAnswer, float]] = TLRUCache(
            maxsize=max_entries, ttu=_expires, timer=timer
        )

    @property
    def max_entries(self) -> int:
        """The size bound."""
        return int(self._entries.maxsize)

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, key: str) -> CachedAnswer | None:
        """The live entry under ``key`` (refreshes its LRU position)."""
        found = self._entries.get(key)
        return found[0] if found is not None else None

    async def put(self, key: str, entry: CachedAnswer, ttl_s: float) -> None:
        """Store ``entry``; the least recently used entry goes when full."""
        self._entries[key] = (entry, ttl_s)


class RedisResponseCache:
    """Entries as Redis strings with a TTL, shared by every replica.

    Key: ``<state.key_prefix>cache:<digest>``. Raises ``StoreUnavailable`` when Redis is down
    (the policy treats that as a miss and stores nothing).
    """

    def __init__(self, client: Redis, health: RedisHealth, *, prefix: str) -> None:
        self._client = client
        self._health = health
        self._prefix = f"{prefix}cache:"

    async def get(self, key: str) -> CachedAnswer | None:
        """The entry under ``key``, or ``None``."""
        raw = cast(
            "bytes | None",
            await guarded(self._health, lambda: self._client.get(self._prefix + key)),
        )
        return decode_entry(raw) if raw is not None else None

    async def put(self, key: str, entry: CachedAnswer, ttl_s: float) -> None:
        """Store ``entry`` with a millisecond TTL."""
        payload = encode_entry(entry)
        ttl_ms = max(int(ttl_s * 1000), 1)
        await guarded(
            self._health, lambda: self._client.set(self._prefix + key, payload, px=ttl_ms)
        )


def new_entry(answer: ChatAnswer, *, provider: str, model: str, route: str) -> CachedAnswer:
    """A cache entry stamped with the current time."""
    return CachedAnswer(answer, provider, model, route, time.time())
