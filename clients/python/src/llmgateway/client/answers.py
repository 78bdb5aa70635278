"""ChatAnswer: a ChatResponse with readable enums, as chat() returns it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from llmgateway.v1 import chat_pb2, common_pb2


class FinishReason(StrEnum):
    """Why generation stopped, named as the openai SDK names it where it has a name.

    A str, so `answer.finish_reason == "stop"` holds and it prints as `stop`.
    """

    UNSPECIFIED = "unspecified"
    STOP = "stop"
    LENGTH = "length"
    TOOL_CALLS = "tool_calls"
    CONTENT_FILTER = "content_filter"
    #: A reasoning model spent its whole budget thinking: content is empty,
    #: `reasoning_content` is not.
    REASONING_ONLY = "reasoning_only"
    ERROR = "error"
    OTHER = "other"

    @classmethod
    def from_proto(cls, value: int) -> FinishReason:
        """The member for a `chat_pb2.FinishReason` number; OTHER for one newer than this client."""
        try:
            name = chat_pb2.FinishReason.Name(chat_pb2.FinishReason.ValueType(value))
        except ValueError:
            return cls.OTHER
        return cls[name.removeprefix("FINISH_REASON_")]


@dataclass(frozen=True)
class ChatAnswer:
    """One complete answer; `response` is the ChatResponse as the gateway sent it.

    The properties are the response's fields, with `finish_reason` as a
    FinishReason and `cost_usd` None when the gateway knows no price.
    """

    response: chat_pb2.ChatResponse

    def __str__(self) -> str:
        return self.content

    @property
    def content(self) -> str:
        """The answer's text (empty for a tool call or a reasoning-only answer)."""
        return self.response.content

    @property
    def reasoning_content(self) -> str:
        """What a reasoning model thought before answering, when it says."""
        return self.response.reasoning_content

    @property
    def tool_calls(self) -> Sequence[chat_pb2.ToolCall]:
        """The tools the model asked to call (`id`, `name`, `arguments` as JSON text)."""
        return self.response.tool_calls

    @property
    def finish_reason(self) -> FinishReason:
        """Why generation stopped."""
        return FinishReason.from_proto(self.response.finish_reason)

    @property
    def usage(self) -> common_pb2.Usage:
        """Token counts: prompt, completion, reasoning, cached, total."""
        return self.response.usage

    @property
    def cost_usd(self) -> float | None:
        """The call's cost in USD, or None when no price is known."""
        return self.response.cost_usd if self.response.HasField("cost_usd") else None

    @property
    def request_id(self) -> str:
        """The id the gateway logged the call under."""
        return self.response.request_id

    @property
    def route(self) -> str:
        """The route that served the call."""
        return self.response.route

    @property
    def provider(self) -> str:
        """The provider that answered."""
        return self.response.provider

    @property
    def model(self) -> str:
        """The upstream model that answered."""
        return self.response.model

    @property
    def attempts(self) -> Sequence[common_pb2.Attempt]:
        """The fallback trace: one Attempt per target tried, in order."""
        return self.response.attempts

    @property
    def cached(self) -> bool:
        """True when the answer came from the gateway's response cache."""
        return self.response.cached
