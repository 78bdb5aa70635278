"""LiteLLM's exceptions map to the same failure classes as the native adapter's."""

from __future__ import annotations

import base64
import contextlib
from types import ModuleType

import httpx
import pytest

from llm_gateway_server.config.providers import ProviderConfig, ProviderKind
from llm_gateway_server.core.errors import UpstreamError, UpstreamFailure
from llm_gateway_server.core.types import Message, ProviderChatRequest, Role
from llm_gateway_server.providers.litellm_adapter import LiteLLMProvider, load_litellm
from llm_gateway_server.providers.litellm_errors import map_litellm_error
from tests.fakes import Behaviour, FakeOllama, Fault

KEY = "sk-ant-unit-SECRET-0123456789"


@pytest.fixture(scope="module")
def litellm() -> ModuleType:
    return load_litellm()


def response(status: int, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(
        status, headers=headers, request=httpx.Request("POST", "http://upstream/v1")
    )


def make(
    litellm: ModuleType, name: str, message: str, status: int = 400, **kwargs: object
) -> BaseException:
    cls = getattr(litellm.exceptions, name)
    if name in ("Timeout", "APIConnectionError"):
        return cls(message=message, llm_provider="anthropic", model="m", **kwargs)  # type: ignore[no-any-return]
    return cls(  # type: ignore[no-any-return]
        message=message,
        llm_provider="anthropic",
        model="m",
        response=response(status, kwargs.pop("headers", None)),  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("name", "message", "status", "expected"),
    [
        ("Timeout", "Request timed out", 408, UpstreamFailure.TIMEOUT),
        ("ContextWindowExceededError", "too long", 400, UpstreamFailure.CONTEXT_LENGTH),
        ("ContentPolicyViolationError", "nope", 400, UpstreamFailure.CONTENT_FILTER),
        ("AuthenticationError", "bad key", 401, UpstreamFailure.AUTH),
        ("PermissionDeniedError", "forbidden", 403, UpstreamFailure.AUTH),
        ("NotFoundError", "no such model", 404, UpstreamFailure.NOT_FOUND),
        ("InternalServerError", "boom", 500, UpstreamFailure.SERVER_ERROR),
        ("ServiceUnavailableError", "overloaded", 503, UpstreamFailure.SERVER_ERROR),
        ("InternalServerError", "Server disconnected", 500, UpstreamFailure.CONNECT),
        (
            "InternalServerError",
            "Response payload is not completed",
            500,
            UpstreamFailure.BAD_RESPONSE,
        ),
        (
            "BadRequestError",
            "Error converting to valid response block=Expecting value",
            400,
            UpstreamFailure.BAD_RESPONSE,
        ),
        (
            "BadRequestError",
            "maximum context length is 8192 tokens",
            400,
            UpstreamFailure.CONTEXT_LENGTH,
        ),
        ("BadRequestError", "temperature out of range", 400, UpstreamFailure.BAD_REQUEST),
        ("APIConnectionError", "Connection refused", 500, UpstreamFailure.CONNECT),
        (
            "APIConnectionError",
            "Unable to get json response - Expecting value",
            500,
            UpstreamFailure.BAD_RESPONSE,
        ),
    ],
)
def test_classes(
    litellm: ModuleType, name: str, message: str, status: int, expected: UpstreamFailure
) -> None:
    err = map_litellm_error("p", make(litellm, name, message, status), litellm, KEY)
    assert err.failure is expected, err.message


def test_rate_limit_retry_after_and_redaction(litellm: ModuleType) -> None:
    exc = make(litellm, "RateLimitError", f"slow down {KEY}", 429, headers={"retry-after": "9"})
    err = map_litellm_error("p", exc, litellm, KEY)
    assert err.failure is UpstreamFailure.RATE_LIMITED
    assert err.retry_after_s == 9.0
    assert KEY not in err.message


def test_mid_stream_wrapper_is_unwrapped(litellm: ModuleType) -> None:
    original = make(litellm, "RateLimitError", "slow down", 429, headers={"retry-after": "2"})
    wrapped = litellm.exceptions.MidStreamFallbackError(
        message="stream failed", model="m", llm_provider="gemini", original_exception=original
    )
    err = map_litellm_error("p", wrapped, litellm, KEY)
    assert err.failure is UpstreamFailure.RATE_LIMITED and err.retry_after_s == 2.0


def test_tracebacks_and_noise_are_stripped(litellm: ModuleType) -> None:
    exc = make(
        litellm,
        "APIConnectionError",
        'Expecting value Traceback (most recent call last):\n  File "/x/litellm/main.py", line 1',
    )
    err = map_litellm_error("p", exc, litellm, KEY)
    assert "Traceback" not in err.message and "main.py" not in err.message
    assert (
        "Handle with"
        not in map_litellm_error(
            "p", make(litellm, "InternalServerError", "x", 500), litellm, KEY
        ).message
    )


def test_the_cause_decides_when_the_sdk_hides_it(litellm: ModuleType) -> None:
    try:
        try:
            raise httpx.RemoteProtocolError(
                "peer closed connection without sending complete message body"
            )
        except httpx.RemoteProtocolError as cause:
            raise make(litellm, "InternalServerError", "Connection error.", 500) from cause
    except Exception as exc:
        err = map_litellm_error("p", exc, litellm, KEY)
    assert err.failure is UpstreamFailure.BAD_RESPONSE


def test_unknown_exceptions(litellm: ModuleType) -> None:
    assert (
        map_litellm_error("p", ValueError("odd"), litellm, KEY).failure
        is UpstreamFailure.BAD_RESPONSE
    )
    assert (
        map_litellm_error("p", ConnectionResetError(), litellm, KEY).failure
        is UpstreamFailure.CONNECT
    )


@pytest.mark.parametrize("streaming", [False, True], ids=["chat", "stream"])
async def test_an_upstream_echoing_the_request_through_litellm_leaks_nothing(
    litellm: ModuleType, fake_ollama: FakeOllama, streaming: bool
) -> None:
    token = "team-TOKEN-5a4b3c2d1e"
    prompt = "My bank PIN is 8812 and my mother's maiden name is Featherstonehaugh, keep it."
    fake_ollama.behaviour = Behaviour(fault=Fault.HTTP_ERROR, status=500, echo_request=True)
    config = ProviderConfig(
        kind=ProviderKind.OLLAMA, api_base=fake_ollama.base_url, headers={"X-Team": token}
    )
    provider = LiteLLMProvider("o", config, api_key=KEY)
    request = ProviderChatRequest(model="m", messages=(Message(Role.USER, prompt),))

    async def call() -> None:
        if streaming:
            async with contextlib.aclosing(provider.stream(request, timeout_s=10)) as deltas:
                _ = [d async for d in deltas]
        else:
            await provider.chat(request, timeout_s=10)

    try:
        with pytest.raises(UpstreamError) as err:
            await call()
    finally:
        await provider.aclose()
    assert fake_ollama.requests, "the upstream was called"
    assert token in str(fake_ollama.last_request.headers)  # it did get the secret
    for leak in (token, KEY, "Featherstonehaugh", "bank PIN"):
        assert leak not in err.value.message


async def test_userinfo_in_an_ollama_api_base_is_sent_as_basic(
    litellm: ModuleType, fake_ollama: FakeOllama
) -> None:
    base = fake_ollama.base_url.replace("http://", "http://ann:pw%21@")
    config = ProviderConfig(kind=ProviderKind.OLLAMA, api_base=base)
    provider = LiteLLMProvider("o", config, api_key=None)
    request = ProviderChatRequest(model="m", messages=(Message(Role.USER, "hi"),))
    try:
        answer = await provider.chat(request, timeout_s=10)
        probe = await provider.probe(timeout_s=5)
    finally:
        await provider.aclose()
    assert answer.content and probe.ok, probe.error
    basic = "Basic " + base64.b64encode(b"ann:pw!").decode()
    assert {r.headers.get("Authorization") for r in fake_ollama.requests} == {basic}
