"""The ``cache:`` section: the response cache."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

_Strict = ConfigDict(extra="forbid", frozen=True)


class CacheConfig(BaseModel):
    """Exact-match response cache (LRU with TTL in memory, or Redis when configured)."""

    model_config = _Strict
    enabled: bool = True
    #: Seconds an answer stays valid unless the request sets its own TTL.
    ttl_s: float = Field(default=3600.0, gt=0)
    #: Entries kept in memory at most (LRU beyond it).
    max_entries: int = Field(default=10_000, ge=1)
    #: Share entries across tenants (default: each tenant has its own).
    shared_across_tenants: bool = False
