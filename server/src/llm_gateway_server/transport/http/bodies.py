"""Reading a request body: the size bound first, then pydantic validation naming the field."""

from __future__ import annotations

from typing import TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from llm_gateway_server.core.errors import RequestInvalid

_M = TypeVar("_M", bound=BaseModel)


def _too_large(size: int | str, limit: int) -> RequestInvalid:
    return RequestInvalid(
        "request",
        f"is {size} bytes, over the limit of {limit} (server.max_message_bytes)",
        reason="REQUEST_TOO_LARGE",
    )


def field_path(loc: tuple[int | str, ...]) -> str:
    """``("messages", 0, "content")`` -> ``messages[0].content``.

    Pydantic puts union branch names in the path (``str``, ``list[...]``, model class
    names); the facade's field names are all lower-case identifiers, so those are dropped.
    """
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part.isidentifier() and part[:1].islower() and part not in {"str", "int", "list"}:
            path += f".{part}" if path else part
    return path or "body"


def invalid(exc: ValidationError) -> RequestInvalid:
    """The first validation error as a RequestInvalid naming its field."""
    first = exc.errors(include_url=False)[0]
    field = field_path(tuple(first["loc"]))
    if first["type"] == "json_invalid":
        return RequestInvalid("body", "is not valid JSON")
    if field == "messages" and first["type"] == "too_short":
        return RequestInvalid("messages", "at least one message is required")
    return RequestInvalid(field, str(first["msg"]))


async def read_model(request: web.Request, model: type[_M], *, max_bytes: int) -> _M:
    """The body validated as ``model``; 413 over ``max_bytes``, 400 naming a bad field."""
    declared = request.content_length
    if declared is not None and declared > max_bytes:
        # Refused before reading: an oversized body is never buffered.
        raise _too_large(declared, max_bytes)
    try:
        # The application's client_max_size is max_message_bytes too: a chunked body with
        # no declared length stops being read there.
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise _too_large(f"over {max_bytes}", max_bytes) from None
    if len(raw) > max_bytes:
        raise _too_large(len(raw), max_bytes)
    if not raw.strip():
        raw = b"{}"
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        raise invalid(exc) from None


async def parse_model(
    request: web.Request, model: type[_M], *, max_bytes: int
) -> _M | RequestInvalid:
    """Like :func:`read_model`, but the error is returned, to be raised later by :func:`valid`."""
    try:
        return await read_model(request, model, max_bytes=max_bytes)
    except RequestInvalid as exc:
        return exc


def valid(parsed: _M | RequestInvalid) -> _M:
    """The model :func:`parse_model` returned, or its error raised."""
    if isinstance(parsed, RequestInvalid):
        raise parsed
    return parsed
