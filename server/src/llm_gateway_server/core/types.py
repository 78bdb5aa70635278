"""Internal request and answer types, free of protobuf and gRPC.

Transport converts protobuf to these and back; routing and providers only see these,
so both are testable without a gRPC server.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Protocol


class Role(enum.StrEnum):
    """Who wrote a message; values are the OpenAI wire names."""

    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"
    TOOL = "tool"


class Task(enum.StrEnum):
    """The kind of work a route serves."""

    CHAT = "chat"
    VISION = "vision"
    OCR = "ocr"
    EMBEDDING = "embedding"


class Privacy(enum.IntEnum):
    """Where a request may go; ordered so that ``min`` gives the stricter one."""

    STRICT = 1
    FLEXIBLE = 2


class Locality(enum.StrEnum):
    """Where a provider runs."""

    LOCAL = "local"
    CLOUD = "cloud"


class FinishReason(enum.StrEnum):
    """Why generation ended (mirrors ``llmgateway.v1.FinishReason``)."""

    STOP = "stop"
    LENGTH = "length"
    TOOL_CALLS = "tool_calls"
    CONTENT_FILTER = "content_filter"
    REASONING_ONLY = "reasoning_only"
    ERROR = "error"
    OTHER = "other"


class AttemptOutcome(enum.StrEnum):
    """How one attempt on a target ended (mirrors ``llmgateway.v1.AttemptOutcome``)."""

    SUCCESS = "success"
    UPSTREAM_ERROR = "upstream_error"
    TIMEOUT = "timeout"
    RATE_LIMITED = "rate_limited"
    CIRCUIT_OPEN = "circuit_open"
    EMPTY_ANSWER = "empty_answer"
    REQUEST_REJECTED = "request_rejected"
    CONCURRENCY_LIMITED = "concurrency_limited"
    CANCELLED = "cancelled"
    STREAM_CUT = "stream_cut"


class ReasoningEffort(enum.StrEnum):
    """How much a reasoning model should think (OpenAI wire names)."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    #: Thinking off where the model allows it (the adapters map it per kind).
    NONE = "none"


class ResponseFormatType(enum.StrEnum):
    """The answer's shape (OpenAI wire names)."""

    TEXT = "text"
    JSON_OBJECT = "json_object"
    JSON_SCHEMA = "json_schema"


class CacheMode(enum.StrEnum):
    """How the response cache treats a request."""

    DEFAULT = "default"
    BYPASS = "bypass"
    ENABLED = "enabled"


@dataclass(frozen=True, slots=True)
class TextPart:
    """A text piece of a multi-part message."""

    text: str


@dataclass(frozen=True, slots=True)
class ImagePart:
    """An image given by URL (http(s) or data:) or inline bytes."""

    url: str | None = None
    data: bytes | None = None
    mime_type: str = ""


Part = TextPart | ImagePart


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A tool call in an answer, or replayed in history."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class Message:
    """One conversation turn. ``content`` for plain text, ``parts`` for text and images."""

    role: Role
    content: str = ""
    parts: tuple[Part, ...] = ()
    name: str = ""
    tool_call_id: str = ""
    tool_calls: tuple[ToolCall, ...] = ()


@dataclass(frozen=True, slots=True)
class Tool:
    """A function the model may call; ``parameters`` is a JSON Schema object."""

    name: str
    description: str = ""
    parameters: dict[str, Any] | None = None
    strict: bool = False


@dataclass(frozen=True, slots=True)
class ToolChoice:
    """``mode`` is auto/none/required; or ``function_name`` forces one tool."""

    mode: str | None = None
    function_name: str | None = None


@dataclass(frozen=True, slots=True)
class ResponseFormat:
    """Constraint on the answer's shape."""

    type: ResponseFormatType = ResponseFormatType.TEXT
    json_schema: dict[str, Any] | None = None
    schema_name: str = ""
    strict: bool = False


@dataclass(frozen=True, slots=True)
class Sampling:
    """Sampling parameters; ``None`` means "the model's default", unlike 0."""

    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    reasoning_effort: ReasoningEffort | None = None


@dataclass(frozen=True, slots=True)
class CacheControl:
    """Per-request cache mode and TTL override (seconds)."""

    mode: CacheMode = CacheMode.DEFAULT
    ttl_s: float | None = None


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """A caller's chat request after validation, before routing.

    ``model`` is what the caller asked for (route name, ``provider/model`` or empty).
    """

    messages: tuple[Message, ...]
    model: str = ""
    task: Task | None = None
    privacy: Privacy | None = None
    tools: tuple[Tool, ...] = ()
    tool_choice: ToolChoice | None = None
    response_format: ResponseFormat | None = None
    sampling: Sampling = field(default_factory=Sampling)
    cache: CacheControl = field(default_factory=CacheControl)
    metadata: dict[str, str] = field(default_factory=dict)
    #: Upstream-specific options (``num_ctx``, ``top_k``...), checked against the route's
    #: provider kinds (``providers.options``).
    provider_options: dict[str, Any] = field(default_factory=dict)
    #: Whether a provider option no target takes is an error (gRPC, OpenAI HTTP) or is
    #: left out (Ollama's API: Ollama itself ignores options a model does not have).
    provider_options_strict: bool = True


@dataclass(frozen=True, slots=True)
class EmbedRequest:
    """A caller's embedding request after validation."""

    inputs: tuple[str, ...]
    model: str = ""
    privacy: Privacy | None = None
    dimensions: int | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    #: As ``ChatRequest.provider_options``.
    provider_options: dict[str, Any] = field(default_factory=dict)
    #: As ``ChatRequest.provider_options_strict``.
    provider_options_strict: bool = True


@dataclass(frozen=True, slots=True)
class ProviderChatRequest:
    """What a provider adapter receives: the request with the upstream model name."""

    model: str
    messages: tuple[Message, ...]
    tools: tuple[Tool, ...] = ()
    tool_choice: ToolChoice | None = None
    response_format: ResponseFormat | None = None
    sampling: Sampling = field(default_factory=Sampling)
    #: The caller's provider options; each adapter takes the keys of its kind.
    provider_options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ProviderEmbedRequest:
    """What a provider adapter receives for embeddings."""

    model: str
    inputs: tuple[str, ...]
    dimensions: int | None = None
    #: As ``ProviderChatRequest.provider_options``.
    provider_options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts as the upstream reported them."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    cached_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        """Prompt plus completion tokens."""
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class ChatAnswer:
    """A complete answer from one provider."""

    content: str
    reasoning_content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: FinishReason = FinishReason.STOP
    usage: Usage = field(default_factory=Usage)
    #: The model name the upstream reported (may differ from the one asked).
    model: str = ""

    @property
    def is_empty(self) -> bool:
        """True when the model produced nothing at all: no text, reasoning or tool call."""
        return not (self.content or self.reasoning_content or self.tool_calls)


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A fragment of a streamed tool call; fragments with one ``index`` concatenate."""

    index: int
    id: str = ""
    name: str = ""
    arguments: str = ""


@dataclass(frozen=True, slots=True)
class ChatDelta:
    """One streamed increment. The last one from a provider carries ``finish_reason``
    and, when the upstream sent it, ``usage``; a delta may carry only those."""

    content: str = ""
    reasoning_content: str = ""
    tool_calls: tuple[ToolCallDelta, ...] = ()
    finish_reason: FinishReason | None = None
    usage: Usage | None = None
    model: str = ""

    @property
    def has_payload(self) -> bool:
        """True when the delta carries text or tool-call fragments for the caller."""
        return bool(self.content or self.reasoning_content or self.tool_calls)


@dataclass(frozen=True, slots=True)
class EmbedAnswer:
    """Vectors in input order."""

    vectors: tuple[tuple[float, ...], ...]
    usage: Usage = field(default_factory=Usage)
    model: str = ""


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """The outcome of a cheap active health probe of a provider."""

    ok: bool
    latency_s: float
    error: str = ""
    models: tuple[str, ...] = ()
    #: False when nothing was asked (a cloud API without a free health call): ``ok`` then
    #: means nothing and health shows the provider as not probed.
    probed: bool = True
    #: The server answers whatever model a request names (llama.cpp's server serves its
    #: one model under any name), so ``models`` says nothing about configured models.
    any_model: bool = False


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """One line of the fallback trace."""

    provider: str
    model: str
    outcome: AttemptOutcome
    latency_s: float
    error: str = ""
    retries: int = 0
    #: What the upstream reported (or was counted) for this attempt, if it answered.
    usage: Usage | None = None


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the tenant of an API key, or ``anonymous`` with auth off."""

    tenant: str
    #: Routes this caller may use; ``None``: all.
    routes: frozenset[str] | None = None
    #: Widest privacy this caller may use; ``None``: no ceiling of its own.
    max_privacy: Privacy | None = None
    #: Privacy for this caller's requests that ask for none.
    default_privacy: Privacy | None = None
    rpm: int | None = None
    tpm: int | None = None
    budget_usd: float | None = None
    budget_period: str = "month"


ANONYMOUS = Principal(tenant="anonymous")


class AttemptSink(Protocol):
    """Where routing reports each attempt as it starts and ends (the call record is one).

    Routing calls ``attempt_started`` before an upstream call (or a skip for an open breaker
    or a full queue) and ``attempt_ended`` exactly once per started attempt, on every exit
    path, cancellation included: a cancelled call's record still names its target.
    """

    def attempt_started(self, provider: str, model: str) -> None:
        """An attempt on ``provider``/``model`` begins."""

    def attempt_ended(self, record: AttemptRecord) -> None:
        """The attempt that began last ended as ``record`` says."""


class _NoAttempts:
    def attempt_started(self, provider: str, model: str) -> None:
        return None

    def attempt_ended(self, record: AttemptRecord) -> None:
        return None


#: The sink of calls that record nothing (unit tests, probes).
NO_ATTEMPTS: AttemptSink = _NoAttempts()


@dataclass(frozen=True, slots=True)
class CallContext:
    """Per-call facts routing and state need, without any gRPC object."""

    request_id: str
    #: Absolute ``time.monotonic()`` by which the caller must have its answer.
    deadline: float
    principal: Principal = ANONYMOUS
    metadata: dict[str, str] = field(default_factory=dict)
    #: Receives every attempt routing makes for this call.
    attempts: AttemptSink = NO_ATTEMPTS
