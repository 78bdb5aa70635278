"""The typed keyword options of chat(), stream(), complete() and stream_text()."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias, TypedDict

from llmgateway.v1 import chat_pb2

#: An enum given as its number, its full name (`PRIVACY_STRICT`) or its short
#: name in any case (`strict`).
EnumLike: TypeAlias = str | int
#: A tool: a Tool, an OpenAI-shaped dict
#: (`{"type": "function", "function": {"name": ..., "parameters": {...}}}`)
#: or the Tool's own JSON form (`{"name": ..., "parameters": {...}}`).
ToolLike: TypeAlias = chat_pb2.Tool | Mapping[str, Any]
#: `"auto"`, `"none"`, `"required"`, an OpenAI-shaped
#: `{"type": "function", "function": {"name": ...}}`, or a ToolChoice.
ToolChoiceLike: TypeAlias = chat_pb2.ToolChoice | str | Mapping[str, Any]
#: `"text"`, `"json_object"`, an OpenAI-shaped
#: `{"type": "json_schema", "json_schema": {"name": ..., "schema": {...}}}`,
#: or a ResponseFormat (or its JSON form).
ResponseFormatLike: TypeAlias = chat_pb2.ResponseFormat | str | Mapping[str, Any]
#: `"bypass"`, `"enabled"`, `{"mode": "enabled", "ttl": "600s"}` or a CacheControl.
CacheLike: TypeAlias = chat_pb2.CacheControl | str | Mapping[str, Any]


class RequestOptions(TypedDict, total=False):
    """The ChatRequest fields a call may set beside the conversation; None leaves one unset."""

    #: A route name (`chat`, `vision`) or `provider/model`.
    model: str
    #: A system prompt put before the conversation.
    system: str | None
    #: `"strict"` (local providers only), `"flexible"` or a `Privacy` value.
    privacy: EnumLike | None
    #: `"chat"`, `"vision"`, `"ocr"` or a `Task` value.
    task: EnumLike | None
    tools: Sequence[ToolLike] | None
    tool_choice: ToolChoiceLike | None
    response_format: ResponseFormatLike | None
    #: Sampling temperature; unset means the model's default.
    temperature: float | None
    top_p: float | None
    #: Upper bound on generated tokens, reasoning included.
    max_tokens: int | None
    #: One stop sequence or several.
    stop: str | Sequence[str] | None
    seed: int | None
    presence_penalty: float | None
    frequency_penalty: float | None
    #: `"low"`, `"medium"`, `"high"` or a `ReasoningEffort` value.
    reasoning_effort: EnumLike | None
    cache: CacheLike | None
    #: Free-form labels, logged with the call.
    metadata: Mapping[str, str] | None
    #: Upstream-specific options passed on as they are (Ollama's `num_ctx`, `keep_alive`).
    provider_options: Mapping[str, Any] | None


class ChatOptions(RequestOptions, total=False):
    """RequestOptions plus the settings of the call itself."""

    #: This call's deadline in seconds instead of the client's default
    #: (for a stream, it bounds the whole stream).
    timeout: float | None
    #: Sent as `x-request-id`; the gateway logs under it.
    request_id: str | None


#: The option names build_chat_request knows, for the run-time check of
#: callers that mypy does not see.
REQUEST_OPTIONS: frozenset[str] = frozenset(RequestOptions.__annotations__)
CALL_OPTIONS: frozenset[str] = frozenset(ChatOptions.__annotations__) - REQUEST_OPTIONS
