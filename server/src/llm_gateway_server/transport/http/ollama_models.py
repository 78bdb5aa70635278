"""Pydantic models of the Ollama requests the facade accepts (unknown fields are ignored)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

# Ollama ignores fields it does not know; so does the facade (``raw``, ``template``, ...).
_Open = ConfigDict(extra="ignore")

#: ``format``: "" or "json", or a JSON Schema object.
Format = Literal["", "json"] | dict[str, Any]
#: ``think``: on/off, or an effort level for models that take one.
Think = bool | Literal["low", "medium", "high"]


class Options(BaseModel):
    """``options``: the ones the core carries are named; the rest are kept as they came."""

    model_config = ConfigDict(extra="allow")
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    #: -1 (infinite) and -2 (fill the context) mean "no limit" to the gateway.
    num_predict: int | None = Field(default=None, ge=-2)
    seed: int | None = None
    stop: list[str] | None = None
    presence_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    frequency_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    top_k: int | None = Field(default=None, ge=0)
    num_ctx: int | None = Field(default=None, gt=0)


class ToolFunctionCall(BaseModel):
    """A tool call's function, with arguments as an object (Ollama's way)."""

    model_config = _Open
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class ToolCall(BaseModel):
    """A tool call replayed in an assistant message."""

    model_config = _Open
    function: ToolFunctionCall


class Message(BaseModel):
    """One conversation turn; ``images`` are base64 strings."""

    model_config = _Open
    role: Literal["system", "user", "assistant", "tool"]
    content: str = ""
    images: list[str] | None = None
    tool_calls: list[ToolCall] | None = None
    tool_name: str | None = None
    thinking: str | None = None


class ToolFunction(BaseModel):
    """A function the model may call."""

    model_config = _Open
    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    description: str | None = None
    parameters: dict[str, Any] | None = None


class Tool(BaseModel):
    """A tool of ``tools``."""

    model_config = _Open
    type: Literal["function"] = "function"
    function: ToolFunction


class _Generation(BaseModel):
    model_config = _Open
    model: str = ""
    stream: bool = True
    format: Format | None = None
    options: Options | None = None
    think: Think | None = None
    #: Accepted and ignored: the gateway does not load or unload models.
    keep_alive: float | str | None = None


class ChatRequest(_Generation):
    """``POST /api/chat``; ``model`` is a route name (or ``provider/model``)."""

    messages: list[Message] = Field(default_factory=list)
    tools: list[Tool] | None = None


class GenerateRequest(_Generation):
    """``POST /api/generate``: a prompt with an optional system prompt and images."""

    prompt: str = ""
    system: str | None = None
    images: list[str] | None = None


class EmbedRequest(BaseModel):
    """``POST /api/embed``."""

    model_config = _Open
    model: str = ""
    input: str | list[str]
    dimensions: int | None = Field(default=None, gt=0)
    truncate: bool | None = None
    options: Options | None = None
    keep_alive: float | str | None = None


class EmbeddingsRequest(BaseModel):
    """``POST /api/embeddings`` (the older API): one prompt, one vector."""

    model_config = _Open
    model: str = ""
    prompt: str
    options: Options | None = None
    keep_alive: float | str | None = None


class ShowRequest(BaseModel):
    """``POST /api/show``; ``name`` is the older spelling of ``model``."""

    model_config = _Open
    model: str = ""
    name: str = ""
