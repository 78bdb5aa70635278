"""The ``auth:`` section: API keys (stored as SHA-256 hashes) and what each may do."""

from __future__ import annotations

import enum

from pydantic import BaseModel, ConfigDict, Field

from llm_gateway_server.config.routes import PrivacySetting

_Strict = ConfigDict(extra="forbid", frozen=True)


class BudgetPeriod(enum.StrEnum):
    """How often a key's budget starts over."""

    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    TOTAL = "total"


class ApiKeyConfig(BaseModel):
    """One API key: a tenant and its permissions, limits and budget."""

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
    #: Requests per minute (unset: unlimited).
    rpm: int | None = Field(default=None, ge=1)
    #: Tokens per minute, prompt + completion (unset: unlimited).
    tpm: int | None = Field(default=None, ge=1)
    #: Budget in US dollars per period (unset: unlimited).
    budget_usd: float | None = Field(default=None, ge=0)
    budget_period: BudgetPeriod = BudgetPeriod.MONTH


class AuthConfig(BaseModel):
    """API-key authentication; off in the local-dev config, on in production."""

    model_config = _Strict
    enabled: bool = False
    keys: tuple[ApiKeyConfig, ...] = ()
