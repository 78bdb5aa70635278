"""The ``state:`` section: where limits, spend, cache and breaker state live."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

_Strict = ConfigDict(extra="forbid", frozen=True)


class StateConfig(BaseModel):
    """In memory (one replica) by default; Redis shares state across replicas."""

    model_config = _Strict
    #: ``redis://host:port/db``; unset: in memory.
    redis_url: str | None = None
    #: When Redis is unreachable: let requests through (True) or refuse them (False).
    limits_fail_open: bool = True
