"""The ``cache:`` section: the response cache."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

_Strict = ConfigDict(extra="forbid", frozen=True)


class CacheConfig(BaseModel):
    """Exact-match response cache (LRU with TTL in memory, or Redis when configured).

    Only requests that should repeat are cached: ``temperature`` explicitly 0, or
    ``cache.mode`` ENABLED on the request; ``cache.mode`` BYPASS skips the cache.
    """

    model_config = _Strict
    enabled: bool = True
    #: Seconds an answer stays valid unless the request sets its own TTL.
    ttl_s: float = Field(default=3600.0, gt=0)
    #: Entries kept in memory at most (least recently used go first).
    max_entries: int = Field(default=10_000, ge=1)
    #: Share entries across tenants (default: each tenant has its own).
    shared_across_tenants: bool = False
    #: Answers larger than this (bytes of text) are not stored.
    max_entry_bytes: int = Field(default=1024 * 1024, ge=1)
