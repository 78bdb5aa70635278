"""The adapters under test: one case per provider kind, each with its fake upstream.

Capabilities differ where a wire format (or LiteLLM) cannot carry a field; each flag says
what the suite may expect, so every other assertion is the same for every adapter.
"""

from __future__ import annotations

from dataclasses import dataclass

from llm_gateway_server.config.providers import ProviderConfig, ProviderKind
from tests.fakes import FakeAnthropic, FakeGemini, FakeOllama, FakeOpenAI, FakeUpstream

#: The API key every case uses; it must never appear in an error message.
API_KEY = "sk-conformance-SECRET-0123456789abcdef"
OPENAI_REASONING_FIELDS = ("reasoning_content", "reasoning", "thinking")


@dataclass(frozen=True)
class AdapterCase:
    """One adapter kind against its fake upstream."""

    id: str
    kind: ProviderKind
    fake: type[FakeUpstream]
    #: The model the router would pass (LiteLLM kind: a full LiteLLM model string).
    model: str = "m"
    #: FakeOpenAI reasoning field names the adapter must read (others: their native one).
    reasoning_fields: tuple[str, ...] = ("native",)
    embeddings: bool = False
    #: The embeddings answer carries token usage on this wire.
    embed_usage: bool = False
    #: The wire reports reasoning / cached tokens (else the adapter reports 0 or estimates).
    reasoning_tokens: bool = False
    cached_tokens: bool = False
    #: The wire has a content-filter finish reason.
    content_filter: bool = False
    #: Text sent before a content-filter stop survives (LiteLLM drops it for Gemini).
    filter_keeps_content: bool = True
    #: A garbage chunk mid-stream is detected (LiteLLM skips such chunks silently).
    malformed_stream_detected: bool = False
    #: Tool-call ids come from the upstream (LiteLLM invents them for Gemini and Ollama).
    upstream_tool_ids: bool = True
    #: The header carrying the key, and its value for API_KEY.
    auth_header: tuple[str, str] = ("Authorization", f"Bearer {API_KEY}")

    def config(self, fake: FakeUpstream, **extra: object) -> ProviderConfig:
        """The provider config pointing at ``fake``."""
        return ProviderConfig.model_validate(
            {"kind": self.kind, "api_base": fake.base_url, **extra}
        )


CASES = (
    AdapterCase(
        "openai_compatible",
        ProviderKind.OPENAI_COMPATIBLE,
        FakeOpenAI,
        reasoning_fields=OPENAI_REASONING_FIELDS,
        embeddings=True,
        embed_usage=True,
        reasoning_tokens=True,
        cached_tokens=True,
        content_filter=True,
        malformed_stream_detected=True,
    ),
    AdapterCase(
        "openai",
        ProviderKind.OPENAI,
        FakeOpenAI,
        reasoning_fields=OPENAI_REASONING_FIELDS,
        embeddings=True,
        embed_usage=True,
        reasoning_tokens=True,
        cached_tokens=True,
        content_filter=True,
        malformed_stream_detected=True,
    ),
    AdapterCase(
        "ollama",
        ProviderKind.OLLAMA,
        FakeOllama,
        embeddings=True,
        embed_usage=True,
        upstream_tool_ids=False,
    ),
    AdapterCase(
        "anthropic",
        ProviderKind.ANTHROPIC,
        FakeAnthropic,
        cached_tokens=True,
        content_filter=True,
        auth_header=("x-api-key", API_KEY),
    ),
    AdapterCase(
        "gemini",
        ProviderKind.GEMINI,
        FakeGemini,
        embeddings=True,
        reasoning_tokens=True,
        cached_tokens=True,
        content_filter=True,
        filter_keeps_content=False,
        upstream_tool_ids=False,
        auth_header=("x-goog-api-key", API_KEY),
    ),
    AdapterCase(
        "litellm",
        ProviderKind.LITELLM,
        FakeOpenAI,
        model="openai/m",
        # LiteLLM's openai/ path keeps reasoning_content and reasoning, drops "thinking".
        reasoning_fields=("reasoning_content", "reasoning"),
        embeddings=True,
        embed_usage=True,
        reasoning_tokens=True,
        cached_tokens=True,
        content_filter=True,
    ),
)
