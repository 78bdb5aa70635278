"""Building the right adapter for a provider's kind."""

from __future__ import annotations

from llm_gateway_server.config.providers import ProviderConfig
from llm_gateway_server.providers.base import Provider
from llm_gateway_server.providers.openai_compatible import OpenAICompatibleProvider


def build_provider(name: str, config: ProviderConfig, api_key: str | None) -> Provider:
    """The adapter for ``config.kind``: native aiohttp for openai/openai_compatible (LiteLLM is
    never imported for those), LiteLLM for every other kind (imported here, on first use).

    Raises:
        ValueError: The config cannot work (e.g. no api_base for openai_compatible).
    """
    if config.native:
        return OpenAICompatibleProvider(name, config, api_key=api_key)
    from llm_gateway_server.providers.litellm_adapter import LiteLLMProvider

    return LiteLLMProvider(name, config, api_key=api_key)
