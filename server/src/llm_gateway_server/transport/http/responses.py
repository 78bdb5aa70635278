"""JSON responses and the gateway's answer headers, shared by both facades."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from llm_gateway_server.core.types import AttemptRecord
from llm_gateway_server.transport.http.calls import Call


def json_response(
    payload: Any, *, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """``payload`` as JSON (orjson: several times faster than json for big vectors)."""
    return web.Response(
        body=orjson.dumps(payload), status=status, headers=headers, content_type="application/json"
    )


def answer_headers(
    call: Call,
    *,
    route: str,
    provider: str,
    model: str,
    attempts: tuple[AttemptRecord, ...],
    cached: bool | None = None,
) -> dict[str, str]:
    """The request id and where the answer came from: route, provider, model, attempts, cache."""
    headers = {
        "x-request-id": call.request_id,
        "x-llm-gateway-route": route,
        "x-llm-gateway-provider": provider,
        "x-llm-gateway-model": model,
        "x-llm-gateway-attempts": str(len(attempts)),
    }
    if cached is not None:
        headers["x-llm-gateway-cache"] = "hit" if cached else "miss"
    return headers
