"""Token estimates made before a call, for token rate limits and budget reservations.

About four characters a token for English and code (OpenAI's rule of thumb), plus a few
tokens of framing per message; the real usage corrects the counts after the call.
"""

from __future__ import annotations

import orjson

from llm_gateway_server.core.types import ChatRequest, EmbedRequest, ImagePart, TextPart

_CHARS_PER_TOKEN = 4
_TOKENS_PER_MESSAGE = 4
#: What one image costs on common vision models at default detail.
_TOKENS_PER_IMAGE = 765


def _text_tokens(chars: int) -> int:
    return -(-chars // _CHARS_PER_TOKEN)


def estimate_prompt_tokens(request: ChatRequest | EmbedRequest) -> int:
    """Tokens the request's input will likely count."""
    if isinstance(request, EmbedRequest):
        return sum(_text_tokens(len(text)) + 1 for text in request.inputs)
    chars = 0
    images = 0
    for message in request.messages:
        chars += len(message.content)
        for part in message.parts:
            if isinstance(part, TextPart):
                chars += len(part.text)
            elif isinstance(part, ImagePart):
                images += 1
        for call in message.tool_calls:
            chars += len(call.name) + len(call.arguments)
    for tool in request.tools:
        chars += len(tool.name) + len(tool.description)
        if tool.parameters:
            chars += len(orjson.dumps(tool.parameters))
    return (
        _text_tokens(chars)
        + _TOKENS_PER_MESSAGE * len(request.messages)
        + _TOKENS_PER_IMAGE * images
    )


def estimate_completion_tokens(request: ChatRequest | EmbedRequest, default: int) -> int:
    """Completion tokens to reserve budget for: ``max_tokens`` when set, else ``default``."""
    if isinstance(request, EmbedRequest):
        return 0
    max_tokens = request.sampling.max_tokens
    return max_tokens if max_tokens is not None else default
