"""The ``state:`` section: where limits, spend, cache and breaker state live."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from llm_gateway_server.config.auth import BudgetPeriod

_Strict = ConfigDict(extra="forbid", frozen=True)


class SharedLimitsConfig(BaseModel):
    """Request and token rates and a budget that apply whether auth is on or off."""

    model_config = _Strict
    #: Requests per minute; unset: unlimited.
    rpm: int | None = Field(default=None, ge=1)
    #: Tokens per minute (the prompt estimate, corrected by the real usage); unset: unlimited.
    tpm: int | None = Field(default=None, ge=1)
    #: Spend limit in US dollars per ``budget_period``; unset: unlimited.
    budget_usd: float | None = Field(default=None, ge=0)
    budget_period: BudgetPeriod = BudgetPeriod.MONTH

    @property
    def active(self) -> bool:
        """True when any limit is set."""
        return self.rpm is not None or self.tpm is not None or self.budget_usd is not None


class StateConfig(BaseModel):
    """In memory (one replica) by default; Redis shares state across replicas."""

    model_config = _Strict
    #: ``redis://[user:password@]host:port/db`` (or ``rediss://``); unset: in memory.
    redis_url: str | None = None
    #: When Redis is unreachable: let requests through (True) or refuse them (False).
    limits_fail_open: bool = True
    #: Prefix of every Redis key the gateway writes.
    key_prefix: str = Field(default="llmgw:", min_length=1)
    #: Seconds one Redis command may take (connect included) before it counts as down.
    redis_timeout_s: float = Field(default=0.5, gt=0)
    #: Seconds Redis is left alone after a failure before it is tried again.
    redis_retry_s: float = Field(default=2.0, gt=0)
    #: Seconds a spend reservation is held at most (a replica that died mid-call).
    reservation_ttl_s: float = Field(default=900.0, gt=0)
    #: ``max_tokens`` a budgeted call that sets none gets: its reservation covers this many
    #: completion tokens (fewer when less budget is left), so concurrent calls cannot
    #: overrun the budget.
    budget_max_tokens: int = Field(default=4096, gt=0)
    #: Limits over every call of the gateway (all replicas with Redis), auth on or off.
    gateway_limits: SharedLimitsConfig = Field(default_factory=SharedLimitsConfig)
    #: Limits of each caller (the tenant with auth on, else the caller header or
    #: ``anonymous``; callers past ``server.max_caller_labels`` share the ``other`` limit).
    caller_limits: SharedLimitsConfig = Field(default_factory=SharedLimitsConfig)

    @field_validator("redis_url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value
