"""HTTP failure classification: status, error body wording, Retry-After."""

from __future__ import annotations

import time
from email.utils import formatdate

import orjson
import pytest

from llm_gateway_server.core.errors import UpstreamFailure
from llm_gateway_server.providers.upstream_errors import (
    error_text,
    failure_for_status,
    parse_retry_after,
    status_error,
)

KEY = "sk-unit-SECRET-abcdef0123456789"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "12"}, 12.0),
        ({"retry-after": "0.5"}, 0.5),
        ({"retry-after": "-3"}, 0.0),
        ({"retry-after-ms": "1500", "retry-after": "9"}, 1.5),
        ({"retry-after": "soon"}, None),
        ({}, None),
    ],
)
def test_retry_after(headers: dict[str, str], expected: float | None) -> None:
    assert parse_retry_after(headers) == expected


def test_retry_after_http_date() -> None:
    value = parse_retry_after({"retry-after": formatdate(time.time() + 30, usegmt=True)})
    assert value is not None and 25 <= value <= 31


@pytest.mark.parametrize(
    ("status", "text", "expected"),
    [
        (500, "", UpstreamFailure.SERVER_ERROR),
        (502, "context length", UpstreamFailure.SERVER_ERROR),
        (429, "", UpstreamFailure.RATE_LIMITED),
        (401, "", UpstreamFailure.AUTH),
        (403, "", UpstreamFailure.AUTH),
        (404, "", UpstreamFailure.NOT_FOUND),
        (405, "", UpstreamFailure.NOT_FOUND),
        (408, "", UpstreamFailure.TIMEOUT),
        (400, "This model's maximum context length is 4096 tokens", UpstreamFailure.CONTEXT_LENGTH),
        (400, "context_length_exceeded", UpstreamFailure.CONTEXT_LENGTH),
        (413, "Too many tokens in the request", UpstreamFailure.CONTEXT_LENGTH),
        (
            400,
            "the request exceeds the available context size (exceed_context_size_error)",
            UpstreamFailure.CONTEXT_LENGTH,
        ),
        (422, "prompt is too long: 210000 tokens", UpstreamFailure.CONTEXT_LENGTH),
        (400, "content_filter: flagged", UpstreamFailure.CONTENT_FILTER),
        (
            400,
            "Your request was rejected as a result of our safety system",
            UpstreamFailure.CONTENT_FILTER,
        ),
        (400, "temperature must be <= 2", UpstreamFailure.BAD_REQUEST),
        (413, "payload too large", UpstreamFailure.BAD_REQUEST),
        (302, "", UpstreamFailure.BAD_RESPONSE),
    ],
)
def test_failure_for_status(status: int, text: str, expected: UpstreamFailure) -> None:
    assert failure_for_status(status, text) is expected


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            {"error": {"message": "bad", "type": "invalid_request_error", "code": 400}},
            "bad: invalid_request_error",
        ),
        ({"error": "model not found"}, "model not found"),
        ({"detail": "nope"}, "nope"),
        (
            [{"error": {"message": "gemini", "status": "INVALID_ARGUMENT"}}],
            "gemini: INVALID_ARGUMENT",
        ),
    ],
)
def test_error_text(body: object, expected: str) -> None:
    assert error_text(orjson.dumps(body)) == expected


def test_error_text_of_a_non_json_body() -> None:
    assert error_text(b"<html>Bad Gateway</html>") == "<html>Bad Gateway</html>"


def test_status_error_is_actionable_and_credential_free() -> None:
    body = orjson.dumps(
        {"error": {"message": f"Incorrect API key provided: {KEY}. See https://u:p@x.io"}}
    )
    err = status_error("cloud", 401, body, {"retry-after": "3"}, KEY)
    assert err.failure is UpstreamFailure.AUTH and err.status == 401
    assert "cloud" in err.message and "401" in err.message
    assert KEY not in err.message and "u:p@" not in err.message
    assert err.retry_after_s is None


def test_status_error_rate_limit_carries_retry_after() -> None:
    err = status_error("p", 429, b"", {"retry-after": "4"})
    assert err.failure is UpstreamFailure.RATE_LIMITED and err.retry_after_s == 4.0
    assert "no error body" in err.message


def test_long_bodies_are_cut() -> None:
    err = status_error("p", 500, b"x" * 10_000, {})
    assert len(err.message) < 500
