"""What a call delivered, counted when the upstream reported no usage (cut, cancelled, silent).

The count uses a real tokenizer (``state.tokens``), so a silent upstream is charged what it
sent, not a guess of four characters a token.
"""

from __future__ import annotations

from llm_gateway_server.core.types import (
    ChatAnswer,
    ChatDelta,
    ChatRequest,
    EmbedRequest,
    ImagePart,
    TextPart,
    Usage,
)
from llm_gateway_server.state.tokens import count_tokens, image_tokens, message_tokens


class Delivered:
    """The text pieces of the deltas a stream delivered (references only, joined on demand)."""

    __slots__ = ("_pieces", "deltas")

    def __init__(self) -> None:
        self._pieces: list[str] = []
        self.deltas = 0

    def add(self, delta: ChatDelta) -> None:
        """Note one delivered delta."""
        self.deltas += 1
        pieces = self._pieces
        if delta.content:
            pieces.append(delta.content)
        if delta.reasoning_content:
            pieces.append(delta.reasoning_content)
        for call in delta.tool_calls:
            pieces.append(call.name)
            pieces.append(call.arguments)

    def completion_tokens(self) -> int:
        """Tokens of everything delivered so far."""
        return count_tokens("".join(self._pieces)) if self._pieces else 0


def prompt_tokens(request: ChatRequest | EmbedRequest) -> int:
    """Tokens of the request's input, counted with the tokenizer."""
    if isinstance(request, EmbedRequest):
        return sum(count_tokens(text) for text in request.inputs)
    tokens = 0
    for message in request.messages:
        tokens += message_tokens() + count_tokens(message.content)
        for part in message.parts:
            if isinstance(part, TextPart):
                tokens += count_tokens(part.text)
            elif isinstance(part, ImagePart):
                tokens += image_tokens()
        for call in message.tool_calls:
            tokens += count_tokens(call.name) + count_tokens(call.arguments)
    return tokens


def counted_usage(request: ChatRequest | EmbedRequest, completion_tokens: int) -> Usage:
    """The usage to charge when the upstream reported none."""
    return Usage(prompt_tokens=prompt_tokens(request), completion_tokens=completion_tokens)


def answer_tokens(answer: ChatAnswer) -> int:
    """Tokens of a complete answer's text and tool calls."""
    text = answer.content + answer.reasoning_content
    text += "".join(call.name + call.arguments for call in answer.tool_calls)
    return count_tokens(text)


def reported(usage: Usage | None) -> bool:
    """True when the upstream reported any usage (all zeros is no report)."""
    return usage is not None and (usage.prompt_tokens > 0 or usage.completion_tokens > 0)
