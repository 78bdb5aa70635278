"""Per-request provider options: which keys each provider kind takes, and where they go.

A caller's ``provider_options`` are merged into the upstream request of the targets whose
kind accepts them (the native kinds: into the JSON body; the LiteLLM kinds: as extra
keyword arguments, which LiteLLM's ``ollama_chat`` puts under Ollama's ``options``). A key
no target of the route accepts is refused, so a typo is an error rather than silence; a
key the gateway sets itself is always refused, so an option can never change the model,
the messages or the stream mode behind the router's back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from llm_gateway_server.config.providers import ProviderKind
from llm_gateway_server.core.errors import RequestInvalid

#: Keys the gateway sets itself (or that have their own request field), for every kind.
RESERVED = frozenset(
    {
        "model", "messages", "input", "prompt", "stream", "stream_options", "n",
        "tools", "tool_choice", "functions", "function_call", "response_format",
        "temperature", "top_p", "max_tokens", "max_completion_tokens", "stop", "seed",
        "presence_penalty", "frequency_penalty", "reasoning_effort", "dimensions",
        "api_key", "api_base", "base_url", "headers", "extra_headers", "extra_body",
        "timeout", "num_retries", "max_retries", "drop_params", "encoding_format",
        "metadata", "user_config", "mock_response",
    }
)  # fmt: skip

#: Sampling extras of llama.cpp's server, vLLM and LM Studio (top-level body fields).
_OPENAI_COMPATIBLE_CHAT = frozenset(
    {
        "top_k", "min_p", "typical_p", "repeat_penalty", "repeat_last_n",
        "repetition_penalty", "length_penalty", "mirostat", "mirostat_tau", "mirostat_eta",
        "tfs_z", "ignore_eos", "min_tokens", "n_keep", "cache_prompt",
        "chat_template_kwargs", "skip_special_tokens", "include_stop_str_in_output",
        "guided_json", "guided_regex", "guided_choice", "guided_grammar",
        "logit_bias", "logprobs", "top_logprobs", "user",
    }
)  # fmt: skip
#: Ollama's model options (``options``) plus ``keep_alive`` and ``think``.
_OLLAMA_CHAT = frozenset(
    {
        "num_ctx", "keep_alive", "top_k", "min_p", "typical_p", "repeat_penalty",
        "repeat_last_n", "mirostat", "mirostat_tau", "mirostat_eta", "tfs_z", "num_predict",
        "num_keep", "num_gpu", "num_thread", "num_batch", "penalize_newline", "think",
    }
)  # fmt: skip
_OPENAI_CHAT = frozenset(
    {
        "logit_bias", "logprobs", "top_logprobs", "user", "service_tier", "store",
        "parallel_tool_calls", "verbosity", "prediction",
    }
)  # fmt: skip

#: Chat keys each kind takes (``None``: any key); docs/provider-options.md lists them.
CHAT_KEYS: dict[ProviderKind, frozenset[str] | None] = {
    ProviderKind.OPENAI_COMPATIBLE: _OPENAI_COMPATIBLE_CHAT,
    ProviderKind.OPENAI: _OPENAI_CHAT,
    ProviderKind.OLLAMA: _OLLAMA_CHAT,
    ProviderKind.ANTHROPIC: frozenset({"top_k", "thinking"}),
    ProviderKind.GEMINI: frozenset({"top_k", "safety_settings", "thinking"}),
    #: Any LiteLLM model: whatever it takes (LiteLLM drops what the upstream lacks).
    ProviderKind.LITELLM: None,
}
#: Embedding keys each kind takes.
EMBED_KEYS: dict[ProviderKind, frozenset[str] | None] = {
    ProviderKind.OPENAI_COMPATIBLE: frozenset({"user"}),
    ProviderKind.OPENAI: frozenset({"user"}),
    ProviderKind.OLLAMA: frozenset({"keep_alive", "truncate", "num_ctx"}),
    ProviderKind.ANTHROPIC: frozenset(),
    ProviderKind.GEMINI: frozenset({"task_type"}),
    ProviderKind.LITELLM: None,
}
#: Keys one request may carry at most.
MAX_OPTIONS = 32


def _accepts(kind: ProviderKind, key: str, *, embedding: bool) -> bool:
    allowed = (EMBED_KEYS if embedding else CHAT_KEYS).get(kind, frozenset())
    return key not in RESERVED and (allowed is None or key in allowed)


def check_options(
    options: Mapping[str, Any], kinds: Iterable[ProviderKind], *, embedding: bool
) -> None:
    """Refuse options no target can take.

    Args:
        options: The request's ``provider_options``.
        kinds: The kinds of the targets the request may use.
        embedding: The options of an embedding request.

    Raises:
        RequestInvalid: ``provider_options.KEY`` is reserved or taken by none of ``kinds``.
    """
    if len(options) > MAX_OPTIONS:
        raise RequestInvalid("provider_options", f"at most {MAX_OPTIONS} options")
    kinds = frozenset(kinds)
    for key in options:
        field = f"provider_options.{key[:64]}"
        if key in RESERVED:
            raise RequestInvalid(field, "is set by the gateway; use the request's own fields")
        if not any(_accepts(kind, key, embedding=embedding) for kind in kinds):
            names = ", ".join(sorted(k.value for k in kinds)) or "none"
            raise RequestInvalid(field, f"is not an option of this route's providers ({names})")


def options_for(
    kind: ProviderKind, options: Mapping[str, Any], *, embedding: bool = False
) -> dict[str, Any]:
    """The options a provider of ``kind`` gets (keys it does not take are left out)."""
    if not options:
        return {}
    return {k: v for k, v in options.items() if _accepts(kind, k, embedding=embedding)}


def from_json(value: Any) -> Any:
    """A JSON value from a protobuf ``Struct`` with whole numbers as ints again.

    ``Struct`` only has doubles, so ``num_ctx: 8192`` arrives as ``8192.0``; servers that
    parse it into an integer (Go's ``int``, pydantic's strict ``int``) would refuse that.
    """
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, dict):
        return {k: from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_json(v) for v in value]
    return value
