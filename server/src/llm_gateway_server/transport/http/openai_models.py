"""Pydantic models of the OpenAI requests the facade accepts (unknown fields are ignored).

Field ranges are checked here, so a bad value is a 400 naming its field; the conversion
to the core's types is in ``openai_convert``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

# OpenAI-compatible servers accept and ignore fields they do not know (``user``, ``n`` = 1,
# ``logprobs`` = false, vendor extensions), so clients written for OpenAI work unchanged.
_Open = ConfigDict(extra="ignore")

PrivacyName = Literal["strict", "flexible"]
TaskName = Literal["chat", "vision", "ocr", "embedding"]


class ImageUrl(BaseModel):
    """``image_url``: an https or data: URL."""

    model_config = _Open
    url: str
    detail: str | None = None


class TextContent(BaseModel):
    """A text part of a message."""

    model_config = _Open
    type: Literal["text"]
    text: str


class ImageContent(BaseModel):
    """An image part of a message."""

    model_config = _Open
    type: Literal["image_url"]
    image_url: ImageUrl


ContentPart = Annotated[TextContent | ImageContent, Field(discriminator="type")]


class FunctionCall(BaseModel):
    """A function call replayed in an assistant message."""

    model_config = _Open
    name: str
    arguments: str = ""


class ToolCallIn(BaseModel):
    """A tool call replayed in an assistant message."""

    model_config = _Open
    id: str = ""
    type: Literal["function"] = "function"
    function: FunctionCall


class ChatMessage(BaseModel):
    """One conversation turn; ``developer`` is OpenAI's newer name for ``system``."""

    model_config = _Open
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None
    name: str | None = None
    tool_call_id: str | None = None
    tool_calls: list[ToolCallIn] | None = None


class FunctionDef(BaseModel):
    """A function the model may call."""

    model_config = _Open
    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class ToolDef(BaseModel):
    """A tool of ``tools``."""

    model_config = _Open
    type: Literal["function"] = "function"
    function: FunctionDef


class NamedFunction(BaseModel):
    """The function of a forced tool choice."""

    model_config = _Open
    name: str


class NamedToolChoice(BaseModel):
    """``tool_choice`` forcing one function."""

    model_config = _Open
    type: Literal["function"] = "function"
    function: NamedFunction


class JsonSchemaFormat(BaseModel):
    """``response_format.json_schema``."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    name: str = ""
    description: str | None = None
    # ``schema`` shadows a BaseModel attribute, hence the alias.
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None


class ResponseFormatIn(BaseModel):
    """``response_format``."""

    model_config = _Open
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None


class StreamOptions(BaseModel):
    """``stream_options``."""

    model_config = _Open
    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    """``POST /v1/chat/completions``; ``model`` is a route name (or ``provider/model``).

    Gateway extensions: ``privacy`` (or the privacy router's ``privacy_mode``) and ``task``.
    """

    model_config = _Open
    model: str = ""
    messages: list[ChatMessage] = Field(min_length=1)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    max_tokens: int | None = Field(default=None, ge=0)
    max_completion_tokens: int | None = Field(default=None, ge=0)
    stop: str | list[str] | None = None
    seed: int | None = None
    presence_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    frequency_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    reasoning_effort: Literal["minimal", "low", "medium", "high"] | None = None
    n: int | None = Field(default=None, ge=1, le=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    tools: list[ToolDef] | None = None
    tool_choice: Literal["auto", "none", "required"] | NamedToolChoice | None = None
    response_format: ResponseFormatIn | None = None
    metadata: dict[str, str] | None = None
    privacy: PrivacyName | None = None
    privacy_mode: PrivacyName | None = None
    task: TaskName | None = None


class EmbeddingRequest(BaseModel):
    """``POST /v1/embeddings``: one string or a list of strings."""

    model_config = _Open
    model: str = ""
    input: str | list[str]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(default=None, gt=0)
    privacy: PrivacyName | None = None
    privacy_mode: PrivacyName | None = None
