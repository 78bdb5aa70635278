"""The ``auth:`` section: API keys (stored as SHA-256 hashes) and what each may do."""

from __future__ import annotations

import enum

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from llm_gateway_server.config.routes import PrivacySetting

_Strict = ConfigDict(extra="forbid", frozen=True)


class BudgetPeriod(enum.StrEnum):
    """How often a key's budget starts over (UTC calendar periods)."""

    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    TOTAL = "total"


class RouteLimitConfig(BaseModel):
    """Rate limits of one key on one route, on top of the key's own limits."""

    model_config = _Strict
    #: Requests per minute on this route (unset: only the key's limit applies).
    rpm: int | None = Field(default=None, ge=1)
    #: Tokens per minute on this route, prompt + completion.
    tpm: int | None = Field(default=None, ge=1)


class ApiKeyConfig(BaseModel):
    """One API key: a tenant and its permissions, limits and budget.

    Keys sharing a ``name`` are one tenant: they share its rate-limit windows, spend and
    stats (which is what key rotation needs).
    """

    model_config = _Strict
    #: The tenant's name, used in stats, logs and limits.
    name: str = Field(min_length=1)
    #: Hex SHA-256 digest of the key (the key itself is never stored).
    sha256: str = Field(pattern=r"^[0-9a-fA-F]{64}$")
    #: Routes the key may use; unset: all.
    routes: tuple[str, ...] | None = None
    #: Widest privacy the key may use.
    max_privacy: PrivacySetting | None = None
    #: Privacy for this key's requests that ask for none.
    default_privacy: PrivacySetting | None = None
    #: Requests per minute over all routes (unset: unlimited).
    rpm: int | None = Field(default=None, ge=1)
    #: Tokens per minute over all routes, prompt + completion (unset: unlimited).
    tpm: int | None = Field(default=None, ge=1)
    #: Budget in US dollars per period (unset: unlimited; 0: nothing that costs money).
    budget_usd: float | None = Field(default=None, ge=0)
    budget_period: BudgetPeriod = BudgetPeriod.MONTH
    #: Extra limits per route name, e.g. ``{chat: {rpm: 60}}``.
    route_limits: dict[str, RouteLimitConfig] = Field(default_factory=dict)

    @field_validator("sha256")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.lower()


class AuthConfig(BaseModel):
    """API-key authentication; off in the local-dev config, on in production.

    Keys come from ``keys`` and, with ``state.redis_url``, from the Redis hash
    ``<state.key_prefix>apikeys`` (field: the key's SHA-256 hex digest; value: a JSON
    object with the fields of one entry of ``keys`` except ``sha256``).
    """

    model_config = _Strict
    enabled: bool = False
    keys: tuple[ApiKeyConfig, ...] = ()
    #: Seconds a key read from Redis is trusted before it is read again (revocation delay).
    redis_key_cache_s: float = Field(default=30.0, ge=0)

    @model_validator(mode="after")
    def _unique_digests(self) -> AuthConfig:
        seen: dict[str, int] = {}
        for i, key in enumerate(self.keys):
            if key.sha256 in seen:
                raise ValueError(
                    f"auth.keys[{i}].sha256: the same key as auth.keys[{seen[key.sha256]}]"
                )
            seen[key.sha256] = i
        return self
