"""Classifying an upstream's HTTP failure once: status, body text and Retry-After."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from email.utils import parsedate_to_datetime
from typing import Any

import orjson

from llm_gateway_server.core.errors import UpstreamError, UpstreamFailure
from llm_gateway_server.core.redaction import mask_echoes, redact

#: How much of an upstream error body ends up in a message.
_SNIPPET_CHARS = 300
#: How much of it is cleaned before the cut (more than is kept, so a secret or an echo
#: straddling the cut is still recognised whole).
_SCAN_CHARS = 4096
#: Request body keys whose values are no text of the caller's (kept when echoed back).
_NOT_CALLER_TEXT = frozenset({"model", "role", "type", "tool_choice", "finish_reason"})

# Lower-case fragments seen in the error bodies of OpenAI, vLLM, llama.cpp, Ollama, LM Studio,
# Anthropic and Gemini when the conversation does not fit the model.
_CONTEXT_MARKERS = (
    "context_length_exceeded",
    "context length",
    "context window",
    "maximum context",
    "too many tokens",
    "prompt is too long",
    "input is too long",
    "exceeds the maximum number of tokens",
    "exceed_context_size",
    "reduce the length",
)
_FILTER_MARKERS = (
    "content_filter",
    "content_policy",
    "content policy",
    "content management policy",
    "safety",
    "responsible ai",
)

_STATUS_FAILURES: dict[int, UpstreamFailure] = {
    401: UpstreamFailure.AUTH,
    402: UpstreamFailure.AUTH,
    403: UpstreamFailure.AUTH,
    404: UpstreamFailure.NOT_FOUND,
    405: UpstreamFailure.NOT_FOUND,
    408: UpstreamFailure.TIMEOUT,
    429: UpstreamFailure.RATE_LIMITED,
}


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``Retry-After`` (delta seconds or HTTP date)."""
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(float(millis) / 1000.0, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


def error_text(body: bytes) -> str:
    """The human part of an error body: ``error.message`` (OpenAI, Anthropic, Gemini),
    ``error`` as a string (Ollama, llama.cpp), ``detail``/``message``, else the raw text."""
    text = body.decode("utf-8", errors="replace").strip()
    try:
        data: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        return text
    return _message_of(data) or text


def _message_of(data: Any) -> str:
    if isinstance(data, list) and data:
        return _message_of(data[0])  # Gemini streams wrap errors in a list
    if not isinstance(data, dict):
        return ""
    error = data.get("error")
    if isinstance(error, str):
        return error
    if isinstance(error, dict):
        parts = [error.get(k) for k in ("message", "type", "code", "status")]
        return ": ".join(dict.fromkeys(p for p in parts if isinstance(p, str) and p))
    for key in ("detail", "message"):
        if isinstance(data.get(key), str):
            return str(data[key])
    return ""


def classify_text(text: str) -> UpstreamFailure | None:
    """CONTEXT_LENGTH or CONTENT_FILTER when an error text says so, else None."""
    lowered = text.lower()
    if any(marker in lowered for marker in _CONTEXT_MARKERS):
        return UpstreamFailure.CONTEXT_LENGTH
    if any(marker in lowered for marker in _FILTER_MARKERS):
        return UpstreamFailure.CONTENT_FILTER
    return None


def failure_for_status(status: int, text: str) -> UpstreamFailure:
    """Map an HTTP status (and, for 4xx refusals, the error text) to a failure class."""
    if status >= 500:
        return UpstreamFailure.SERVER_ERROR
    known = _STATUS_FAILURES.get(status)
    if known is not None:
        return known
    if 400 <= status < 500:
        return classify_text(text) or UpstreamFailure.BAD_REQUEST
    return UpstreamFailure.BAD_RESPONSE


def snippet(text: str, *secrets: str, echoes: Sequence[str] = ()) -> str:
    """A short excerpt of upstream text for an error message, without credentials or the
    request's own text.

    Args:
        text: What the upstream (or an exception about it) said.
        *secrets: Exact values to mask (every form of the provider's credentials).
        echoes: The request's texts (``echo_sources``): an upstream that echoes the request
            must not hand a prompt to logs, Health or another caller.
    """
    text = text[:_SCAN_CHARS]
    text = redact(text, *secrets)
    if echoes:
        text = mask_echoes(text, echoes)
    text = " ".join(text.split())
    if len(text) > _SNIPPET_CHARS:
        text = text[:_SNIPPET_CHARS] + "..."
    # Again after the cut: a pattern (a bearer token) may now end where the text ends.
    return redact(text)


def echo_sources(body: object) -> tuple[str, ...]:
    """The caller's texts in a request body (messages, tools, schemas), for ``snippet``."""
    out: list[str] = []
    stack: list[object] = [body]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, dict):
            stack.extend(v for k, v in item.items() if k not in _NOT_CALLER_TEXT)
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return tuple(out)


def status_error(
    provider: str,
    status: int,
    body: bytes,
    headers: Mapping[str, str],
    *secrets: str,
    echoes: Sequence[str] = (),
) -> UpstreamError:
    """Build the UpstreamError for a non-2xx answer.

    Args:
        provider: Provider name, so the message says which upstream refused.
        status: The HTTP status.
        body: The (possibly truncated) error body.
        headers: Response headers (case-insensitive mapping), for Retry-After.
        *secrets: Values to mask (every form of the provider's credentials).
        echoes: The request's texts, masked where the body repeats them.
    """
    text = error_text(body)
    failure = failure_for_status(status, text)
    retry_after = parse_retry_after(headers) if failure is UpstreamFailure.RATE_LIMITED else None
    detail = snippet(text, *secrets, echoes=echoes) or "no error body"
    return UpstreamError(
        failure,
        f"provider {provider!r} answered HTTP {status} ({failure.value}): {detail}",
        status=status,
        retry_after_s=retry_after,
    )
