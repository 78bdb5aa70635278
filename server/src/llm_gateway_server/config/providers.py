"""The ``providers:`` section: upstream APIs and how to reach them, one config type per kind.

``ProviderConfig`` holds every option (so code reading a provider's config needs one type);
what a config file loads is one of its per-kind subclasses, picked by ``kind`` (a tagged
union, as TensorZero's ``model.rs`` has): ``NativeProviderConfig`` for the kinds the native
aiohttp adapter serves, ``LiteLLMProviderConfig`` for the kinds served through LiteLLM.
Unknown keys are refused for every kind, and so is an option the kind's adapter cannot
honour, naming the key, instead of being silently ignored.
"""

from __future__ import annotations

import enum
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    field_validator,
    model_validator,
)

from llm_gateway_server.core.types import Locality


class ProviderKind(enum.StrEnum):
    """How the gateway talks to a provider."""

    #: Ollama's /v1, LM Studio, llama.cpp server, vLLM, LocalAI: native aiohttp path.
    OPENAI_COMPATIBLE = "openai_compatible"
    #: api.openai.com (or an Azure-style base): native aiohttp path, key required.
    OPENAI = "openai"
    #: Ollama's native /api/chat and /api/embed, through LiteLLM's ``ollama_chat/``.
    OLLAMA = "ollama"
    #: Anthropic Messages API, through LiteLLM.
    ANTHROPIC = "anthropic"
    #: Gemini generateContent, through LiteLLM.
    GEMINI = "gemini"
    #: Any LiteLLM model string (``bedrock/...``, ``mistral/...``): through LiteLLM.
    LITELLM = "litellm"


#: Kinds served by the native aiohttp adapter; everything else goes through LiteLLM.
NATIVE_KINDS = frozenset({ProviderKind.OPENAI_COMPATIBLE, ProviderKind.OPENAI})
#: Kinds that cannot work without an API key.
KEY_REQUIRED_KINDS = frozenset({ProviderKind.OPENAI, ProviderKind.ANTHROPIC, ProviderKind.GEMINI})

_Strict = ConfigDict(extra="forbid", frozen=True)


class RetryConfig(BaseModel):
    """Retries of one target before moving on to the next."""

    model_config = _Strict
    #: Total tries of one target per request (1 = no retry).
    max_attempts: int = Field(default=2, ge=1, le=10)
    #: Base of the exponential backoff (full jitter), seconds.
    base_delay_s: float = Field(default=0.1, ge=0)
    #: Cap of one backoff sleep, seconds (a longer Retry-After moves on instead).
    max_delay_s: float = Field(default=2.0, ge=0)


class BreakerConfig(BaseModel):
    """The circuit breaker of each target (provider and model) of this provider."""

    model_config = _Strict
    #: Consecutive failures that open the breaker.
    failure_threshold: int = Field(default=5, ge=1)
    #: Seconds an open breaker waits before letting one probe call through.
    reset_timeout_s: float = Field(default=30.0, gt=0)


class ProbeConfig(BaseModel):
    """Active health checks (GET /v1/models, Ollama /api/tags)."""

    model_config = _Strict
    #: Probe this provider. Unset: on for local providers, off for cloud ones.
    enabled: bool | None = None
    #: Seconds between probes (jittered by +-20%).
    interval_s: float = Field(default=15.0, gt=0)
    #: Seconds one probe may take.
    timeout_s: float = Field(default=2.0, gt=0)


class ModelPrice(BaseModel):
    """Per-model price in US dollars per million tokens (overrides LiteLLM's cost map)."""

    model_config = _Strict
    input_per_mtok: float = Field(default=0.0, ge=0)
    output_per_mtok: float = Field(default=0.0, ge=0)


class ProviderConfig(BaseModel):
    """One upstream provider: every option of every kind (see the per-kind subclasses)."""

    model_config = _Strict
    kind: ProviderKind
    #: Base URL, e.g. ``http://localhost:11434/v1``. Required for openai_compatible.
    api_base: str | None = None
    #: Name of the environment variable holding the API key (read once, at load).
    api_key_env: str | None = None
    #: Where the provider runs; STRICT requests only use ``local`` ones.
    locality: Locality = Locality.CLOUD
    #: Seconds one attempt may take (a stream: until its last chunk).
    timeout_s: float = Field(default=60.0, gt=0)
    #: Seconds to establish a connection.
    connect_timeout_s: float = Field(default=3.0, gt=0)
    #: Calls in flight at most (0 = unlimited), so one GPU box is not overrun.
    max_in_flight: int = Field(default=0, ge=0)
    #: Calls waiting for a slot at most; beyond it: RESOURCE_EXHAUSTED.
    max_queue: int = Field(default=64, ge=0)
    #: Seconds the first streamed token may take (a model loading, a long prompt); past it
    #: the call moves to the next target before anything was sent. Unset: only ``timeout_s``.
    first_token_timeout_s: float | None = Field(default=None, gt=0)
    #: Pooled HTTP connections to this provider at most (native kinds). 0: sized from
    #: ``max_in_flight``, or unlimited with it, so the pool is never the gateway's own limit.
    max_connections: int = Field(default=0, ge=0)
    #: Bytes of one upstream answer at most (a larger one is BAD_RESPONSE, read no further).
    max_response_bytes: int = Field(default=32 * 1024 * 1024, gt=0)
    #: Bytes of one SSE line or event at most (streams).
    max_event_bytes: int = Field(default=1024 * 1024, gt=0)
    #: Move inline ``<think>...</think>`` at the start of the content into the reasoning
    #: text. Unset: on for local providers (DeepSeek-R1, Qwen3 through Ollama or llama.cpp).
    reasoning_tags: bool | None = None
    retry: RetryConfig = Field(default_factory=RetryConfig)
    breaker: BreakerConfig = Field(default_factory=BreakerConfig)
    probe: ProbeConfig = Field(default_factory=ProbeConfig)
    #: Extra HTTP headers sent upstream (values may use ${ENV} interpolation).
    headers: dict[str, str] = Field(default_factory=dict)
    #: Extra fields merged into every chat request: the body of the native kinds
    #: (vLLM's ``top_k``, llama.cpp's ``ignore_eos``), extra LiteLLM arguments for the
    #: others (Ollama's ``num_ctx``, which LiteLLM sends under ``options``).
    extra_body: dict[str, Any] = Field(default_factory=dict)
    #: Ask the upstream to stream even for unary Chat (native kinds): a cancelled or
    #: timed-out call then frees the upstream's slot at once. llama.cpp's server keeps
    #: generating for a dropped non-streaming request; vLLM and Ollama stop either way.
    stream_unary: bool = False
    #: Per-model prices; local models cost 0 unless priced here.
    prices: dict[str, ModelPrice] = Field(default_factory=dict)

    @field_validator("headers")
    @classmethod
    def _one_line_headers(cls, headers: dict[str, str]) -> dict[str, str]:
        # A CR or LF in a header (a ${VAR} with a trailing newline) would be refused by
        # aiohttp on every call, or worse, split the request: refuse it at load instead.
        for name, value in headers.items():
            if any(c in name or c in value for c in "\r\n\0"):
                raise ValueError(f"header {name[:64]!r}: CR, LF and NUL are not allowed")
        return headers

    @model_validator(mode="after")
    def _check(self) -> ProviderConfig:
        if self.kind is ProviderKind.OPENAI_COMPATIBLE and not self.api_base:
            raise ValueError("api_base is required for kind openai_compatible")
        if self.api_base and self.api_key_env and _has_userinfo(self.api_base):
            # Two credentials for one upstream: which one is sent would be a guess.
            raise ValueError(
                "api_base carries credentials (user:password@) and api_key_env is set too: "
                "keep one of api_base's userinfo and api_key_env"
            )
        return self

    @property
    def native(self) -> bool:
        """True when served by the native aiohttp adapter rather than LiteLLM."""
        return self.kind in NATIVE_KINDS

    @property
    def probe_enabled(self) -> bool:
        """Whether active probes run: explicit setting, else on for local providers."""
        if self.probe.enabled is not None:
            return self.probe.enabled
        return self.locality is Locality.LOCAL


def _has_userinfo(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.username is not None or parts.password is not None


class NativeProviderConfig(ProviderConfig):
    """``openai_compatible`` and ``openai``: the native aiohttp adapter honours every option."""

    kind: Literal[ProviderKind.OPENAI_COMPATIBLE, ProviderKind.OPENAI]


#: Options only the native adapter honours: it owns the HTTP connection and parses the
#: SSE stream itself, while LiteLLM does both for its kinds.
NATIVE_ONLY_OPTIONS = ("connect_timeout_s", "max_connections", "max_event_bytes", "stream_unary")


class LiteLLMProviderConfig(ProviderConfig):
    """``ollama``, ``anthropic``, ``gemini`` and ``litellm``: served through LiteLLM."""

    kind: Literal[
        ProviderKind.OLLAMA, ProviderKind.ANTHROPIC, ProviderKind.GEMINI, ProviderKind.LITELLM
    ]

    @field_validator(*NATIVE_ONLY_OPTIONS, mode="before")
    @classmethod
    def _native_only(cls, value: object) -> object:
        # Runs only for keys the file sets (defaults are not validated).
        raise ValueError(
            "not supported by the LiteLLM kinds (ollama, anthropic, gemini, litellm): "
            "only openai_compatible and openai honour it"
        )


_BY_KIND: dict[str, type[ProviderConfig]] = {
    **{kind.value: NativeProviderConfig for kind in NATIVE_KINDS},
    **{kind.value: LiteLLMProviderConfig for kind in ProviderKind if kind not in NATIVE_KINDS},
}


def _by_kind(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    # The tagged union, dispatched by hand: pydantic's own discriminated union would put the
    # tag into every error's location ("providers.x.anthropic.stream_unary"), and error
    # lines must name the key as written in the file.
    if isinstance(value, dict):
        kind_class = _BY_KIND.get(str(value.get("kind", "")))
        if kind_class is not None:
            return kind_class.model_validate(value)
    return handler(value)


#: The type of one entry of ``providers:``: the per-kind config its ``kind`` names.
ProviderConfigByKind = Annotated[ProviderConfig, WrapValidator(_by_kind)]
