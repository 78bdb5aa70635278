"""Mapping LiteLLM's exceptions to the gateway's UpstreamError classes."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import Any

from llm_gateway_server.core.errors import UpstreamError, UpstreamFailure
from llm_gateway_server.providers.upstream_errors import (
    classify_text,
    failure_for_status,
    parse_retry_after,
    snippet,
)

# Exception class names of litellm.exceptions, checked in order (subclasses first: the
# context-window and content-policy errors are BadRequestErrors, Timeout is a connection error).
_BY_CLASS: tuple[tuple[str, UpstreamFailure], ...] = (
    ("Timeout", UpstreamFailure.TIMEOUT),
    ("ContextWindowExceededError", UpstreamFailure.CONTEXT_LENGTH),
    ("ContentPolicyViolationError", UpstreamFailure.CONTENT_FILTER),
    ("RateLimitError", UpstreamFailure.RATE_LIMITED),
    ("AuthenticationError", UpstreamFailure.AUTH),
    ("PermissionDeniedError", UpstreamFailure.AUTH),
    ("NotFoundError", UpstreamFailure.NOT_FOUND),
    ("ServiceUnavailableError", UpstreamFailure.SERVER_ERROR),
    ("InternalServerError", UpstreamFailure.SERVER_ERROR),
    ("BadGatewayError", UpstreamFailure.SERVER_ERROR),
    ("APIResponseValidationError", UpstreamFailure.BAD_RESPONSE),
    ("BadRequestError", UpstreamFailure.BAD_REQUEST),
    ("UnprocessableEntityError", UpstreamFailure.BAD_REQUEST),
)

# Classes that say what happened; the others are refined by the message text.
_DEFINITE = frozenset(
    {
        UpstreamFailure.TIMEOUT,
        UpstreamFailure.CONTEXT_LENGTH,
        UpstreamFailure.CONTENT_FILTER,
        UpstreamFailure.RATE_LIMITED,
        UpstreamFailure.AUTH,
        UpstreamFailure.NOT_FOUND,
    }
)
# Text of wrapped errors that mean "the answer was garbage or cut", whatever class LiteLLM
# chose for them (it reports a cut body as InternalServerError, bad JSON as BadRequestError).
_BAD_RESPONSE_MARKERS = (
    "jsondecodeerror",
    "remoteprotocolerror",
    "clientpayloaderror",
    "unable to get json response",
    "error converting to valid response",
    "expecting value",
    "unterminated string",
    "incomplete chunked read",
    "peer closed connection",
    "response payload is not completed",
    "not enough data to satisfy",
)
_CONNECT_MARKERS = (
    "server disconnected",
    "cannot connect",
    "connect call failed",
    "connection refused",
    "connection error",
    "connection reset",
    "all connection attempts failed",
    "name or service not known",
)
# LiteLLM's noise around the upstream's own words.
_NOISE = re.compile(r"Handle with `[^`]*`\.?|File an issue if litellm error - \S+|litellm\.\w+: ")


def map_litellm_error(
    provider: str,
    exc: BaseException,
    litellm: ModuleType,
    *secrets: str,
    echoes: Sequence[str] = (),
) -> UpstreamError:
    """The UpstreamError for an exception raised by ``litellm.acompletion``/``aembedding``.

    Args:
        provider: Provider name, for the message.
        exc: What LiteLLM raised.
        litellm: The imported module (its ``exceptions`` are looked up here, lazily).
        *secrets: Masked in the message (every form of the provider's credentials).
        echoes: The request's texts (``echo_sources``), masked where the upstream's error,
            which LiteLLM quotes, repeats them.
    """
    # Stream errors come wrapped in MidStreamFallbackError, even before the first chunk.
    original = getattr(exc, "original_exception", None)
    if isinstance(original, BaseException):
        exc = original
    failure = _classify(exc, litellm)
    status = getattr(exc, "status_code", None)
    status = status if isinstance(status, int) else None
    retry_after = _retry_after(exc) if failure is UpstreamFailure.RATE_LIMITED else None
    text = str(getattr(exc, "message", "") or exc)
    # LiteLLM sometimes appends a formatted traceback to the message: never pass one on.
    text = _NOISE.sub("", text.split("Traceback (most recent call last)")[0]).strip()
    return UpstreamError(
        failure,
        f"provider {provider!r} failed ({failure.value}): "
        f"{snippet(text or type(exc).__name__, *secrets, echoes=echoes)}",
        status=status,
        retry_after_s=retry_after,
    )


def _chain_text(exc: BaseException) -> str:
    """The text of ``exc`` and its causes: SDK wrappers hide the cause ("Connection error.")."""
    parts: list[str] = []
    seen: BaseException | None = exc
    for _ in range(6):
        if seen is None:
            break
        parts.append(f"{type(seen).__name__}: {seen}")
        seen = seen.__cause__ or seen.__context__
    return " | ".join(parts).lower()


def _classify(exc: BaseException, litellm: ModuleType) -> UpstreamFailure:
    exceptions = litellm.exceptions
    text = _chain_text(exc)
    failure = None
    for name, candidate in _BY_CLASS:
        cls = getattr(exceptions, name, None)
        if isinstance(cls, type) and isinstance(exc, cls):
            failure = candidate
            break
    if failure in _DEFINITE:
        return failure
    if any(marker in text for marker in _BAD_RESPONSE_MARKERS):
        return UpstreamFailure.BAD_RESPONSE
    if failure is UpstreamFailure.BAD_REQUEST:
        # LiteLLM does not recognise every server's wording for these.
        return classify_text(text) or failure
    if any(marker in text for marker in _CONNECT_MARKERS) or isinstance(exc, ConnectionError):
        return UpstreamFailure.CONNECT
    if failure is not None:
        return failure
    status = getattr(exc, "status_code", None)
    if isinstance(status, int) and status >= 400:
        return failure_for_status(status, text)
    connection_error = getattr(exceptions, "APIConnectionError", None)
    if isinstance(connection_error, type) and isinstance(exc, connection_error):
        return UpstreamFailure.CONNECT
    return UpstreamFailure.BAD_RESPONSE


def _retry_after(exc: BaseException) -> float | None:
    for source in (getattr(exc, "litellm_response_headers", None), _response_headers(exc)):
        if isinstance(source, Mapping):
            headers = {str(k).lower(): str(v) for k, v in source.items()}
            value = parse_retry_after(headers)
            if value is not None:
                return value
    return None


def _response_headers(exc: BaseException) -> Any:
    response = getattr(exc, "response", None)
    return getattr(response, "headers", None)
