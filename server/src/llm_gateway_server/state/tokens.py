"""Token estimates made before a call, and token counts of what a call delivered.

Estimates (token rate limits, budget reservations) take about four characters a token plus
a few tokens of framing per message; the real usage corrects them after the call. Counts
(an answer or a cut stream whose upstream reported no usage) use a real tokenizer: tiktoken's
``o200k_base``, read from the encoding files LiteLLM bundles, so it works with no network.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import threading
from pathlib import Path
from typing import Protocol

import orjson

from llm_gateway_server.core.types import ChatRequest, EmbedRequest, ImagePart, TextPart

_CHARS_PER_TOKEN = 4
_TOKENS_PER_MESSAGE = 4
#: What one image costs on common vision models at default detail.
_TOKENS_PER_IMAGE = 765


_log = logging.getLogger(__name__)
_ENCODING = "o200k_base"


class _Encoding(Protocol):
    def encode_ordinary(self, text: str) -> list[int]: ...


_encoder: _Encoding | None = None
_loaded = False
_lock = threading.Lock()


def _bundled_encodings() -> str | None:
    # find_spec locates litellm without importing it (the import takes seconds).
    spec = importlib.util.find_spec("litellm")
    if spec is None or spec.origin is None:
        return None
    folder = Path(spec.origin).parent / "litellm_core_utils" / "tokenizers"
    return str(folder) if folder.is_dir() else None


def load_tokenizer() -> bool:
    """Load the tokenizer (blocking file I/O: ``ready_tokenizer`` runs it in a thread).

    Returns False when no encoding file is available; counts then fall back to the
    estimate's four characters a token.
    """
    global _encoder, _loaded
    with _lock:
        if _loaded:
            return _encoder is not None
        _loaded = True
        try:
            import tiktoken

            folder = _bundled_encodings()
            if folder is not None and "TIKTOKEN_CACHE_DIR" not in os.environ:
                os.environ["TIKTOKEN_CACHE_DIR"] = folder
            _encoder = tiktoken.get_encoding(_ENCODING)
        except Exception as exc:  # no file and no network: counting still works, coarser
            _log.warning("token counts use 4 characters a token: %s", type(exc).__name__)
            _encoder = None
    return _encoder is not None


async def ready_tokenizer() -> None:
    """Load the tokenizer the first time a count is needed, off the event loop.

    Lazily, not at start-up: the encoding costs about 67 MB of RSS (measured: 84 -> 151 MB
    in a process that imported the gateway), and most upstreams report usage, so many
    gateways never need it. The first count waits for the load once (~0.5 s here).
    """
    if not _loaded:
        exact = await asyncio.to_thread(load_tokenizer)
        _log.info("token counter ready (%s)", "tiktoken" if exact else "4 characters a token")


def count_tokens(text: str) -> int:
    """Tokens of ``text`` with the tokenizer (four characters a token if it is not loaded)."""
    if not text:
        return 0
    encoder = _encoder
    if encoder is None:
        return _text_tokens(len(text))
    return len(encoder.encode_ordinary(text))


def message_tokens() -> int:
    """Framing tokens a chat message costs besides its text."""
    return _TOKENS_PER_MESSAGE


def image_tokens() -> int:
    """What one image costs on common vision models at default detail."""
    return _TOKENS_PER_IMAGE


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
