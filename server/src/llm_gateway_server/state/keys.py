"""API keys: SHA-256 digests from config and, with Redis, from a Redis hash.

Redis layout: hash ``<state.key_prefix>apikeys``, field = the key's lowercase hex SHA-256
digest, value = a JSON object with the fields of one ``auth.keys`` entry except ``sha256``,
e.g. ``HSET llmgw:apikeys <digest> '{"name": "team-b", "rpm": 60, "budget_usd": 5}'``.
Keys read from Redis are trusted for ``auth.redis_key_cache_s`` seconds (the delay of a
revocation); while Redis is down, keys already seen keep working.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast

import orjson
from cachetools import LRUCache, TTLCache
from pydantic import ValidationError
from redis.asyncio import Redis

from llm_gateway_server.config.auth import ApiKeyConfig, AuthConfig, RouteLimitConfig
from llm_gateway_server.core.errors import Unauthenticated
from llm_gateway_server.core.types import ANONYMOUS, Principal
from llm_gateway_server.state.redis_health import RedisHealth, StoreUnavailable, guarded

logger = logging.getLogger(__name__)

#: Unknown digests are remembered this long (at most ``redis_key_cache_s``), so a flood of
#: bad keys does not reach Redis.
_NEGATIVE_CACHE_S = 5.0
_CACHE_ENTRIES = 10_000


@dataclass(frozen=True, slots=True)
class KeyPrincipal(Principal):
    """A principal from an API key, with the key's per-route limits."""

    route_limits: tuple[tuple[str, RouteLimitConfig], ...] = ()


def route_limits_of(principal: Principal) -> Mapping[str, RouteLimitConfig]:
    """The per-route limits of a principal (none for ``ANONYMOUS``)."""
    if isinstance(principal, KeyPrincipal) and principal.route_limits:
        return dict(principal.route_limits)
    return {}


def principal_for(key: ApiKeyConfig) -> KeyPrincipal:
    """The principal an API key stands for."""
    return KeyPrincipal(
        tenant=key.name,
        routes=frozenset(key.routes) if key.routes is not None else None,
        max_privacy=key.max_privacy.to_privacy() if key.max_privacy else None,
        default_privacy=key.default_privacy.to_privacy() if key.default_privacy else None,
        rpm=key.rpm,
        tpm=key.tpm,
        budget_usd=key.budget_usd,
        budget_period=key.budget_period.value,
        route_limits=tuple(sorted(key.route_limits.items())),
    )


def digest_of(raw_key: str) -> str:
    """Lowercase hex SHA-256 of a presented key."""
    return hashlib.sha256(raw_key.encode("utf-8")).hexdigest()


class KeyStore:
    """Turns a presented API key into a ``Principal``."""

    def __init__(
        self,
        auth: AuthConfig,
        *,
        client: Redis | None = None,
        health: RedisHealth | None = None,
        prefix: str = "llmgw:",
    ) -> None:
        self._client = client
        self._health = health
        self._hash = f"{prefix}apikeys"
        self._fresh: TTLCache[str, KeyPrincipal] = TTLCache(_CACHE_ENTRIES, 1.0)
        self._cache_s = 0.0
        self._known: LRUCache[str, KeyPrincipal] = LRUCache(_CACHE_ENTRIES)
        self._unknown: TTLCache[str, bool] = TTLCache(_CACHE_ENTRIES, _NEGATIVE_CACHE_S)
        self.swap(auth)

    def swap(self, auth: AuthConfig) -> None:
        """Take the keys and settings of a reloaded config."""
        self._enabled = auth.enabled
        self._configured = tuple((key.sha256, principal_for(key)) for key in auth.keys)
        self._cache_s = auth.redis_key_cache_s
        self._fresh = TTLCache(_CACHE_ENTRIES, max(self._cache_s, 0.001))
        negative_s = min(_NEGATIVE_CACHE_S, self._cache_s)
        self._unknown = TTLCache(_CACHE_ENTRIES, max(negative_s, 0.001))

    async def authenticate(self, raw_key: str | None) -> Principal:
        """The caller behind ``raw_key``; ``ANONYMOUS`` when auth is off.

        Raises:
            Unauthenticated: No key (API_KEY_MISSING) or an unknown one (API_KEY_INVALID).
        """
        if not self._enabled:
            return ANONYMOUS
        if not raw_key:
            raise Unauthenticated("an API key is required", reason="API_KEY_MISSING")
        digest = digest_of(raw_key.strip())
        found = self._match_configured(digest) or self._fresh.get(digest)
        if found is None and self._client is not None and digest not in self._unknown:
            found = await self._from_redis(digest)
        if found is None:
            raise Unauthenticated("the API key is not valid", reason="API_KEY_INVALID")
        return found

    def _match_configured(self, digest: str) -> KeyPrincipal | None:
        # Every configured digest is compared, in constant time and without stopping at
        # a match, so timing tells nothing about which key (if any) matched.
        match: KeyPrincipal | None = None
        for stored, principal in self._configured:
            if hmac.compare_digest(stored, digest):
                match = principal
        return match

    def _remember_unknown(self, digest: str) -> None:
        if self._cache_s > 0:
            self._unknown[digest] = True

    async def _from_redis(self, digest: str) -> KeyPrincipal | None:
        client, health = self._client, self._health
        if client is None or health is None:
            return None
        # Looked up by digest: timing can only tell about digests, never about keys.
        try:
            raw = cast(
                "bytes | None", await guarded(health, lambda: client.hget(self._hash, digest))
            )
        except StoreUnavailable:
            # Fail static: keys seen before keep working while Redis is away.
            return self._known.get(digest)
        if raw is None:
            self._remember_unknown(digest)
            self._known.pop(digest, None)
            return None
        try:
            key = ApiKeyConfig.model_validate({**orjson.loads(raw), "sha256": digest})
        except (ValidationError, orjson.JSONDecodeError, TypeError):
            logger.warning("ignoring a malformed API key entry in Redis hash %s", self._hash)
            self._remember_unknown(digest)
            return None
        principal = principal_for(key)
        if self._cache_s > 0:
            self._fresh[digest] = principal
        self._known[digest] = principal
        return principal
