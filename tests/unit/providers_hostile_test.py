"""The native adapter against hostile upstreams: connect timeouts, URL credentials, capped
bodies and events, echoed requests (fake upstreams on loopback, no stubs)."""

from __future__ import annotations

import asyncio
import base64
import socket
from collections.abc import AsyncIterator, Iterator

import pytest

from llm_gateway_server.config.loader import parse_config
from llm_gateway_server.config.providers import ProviderConfig, ProviderKind
from llm_gateway_server.core.errors import UpstreamError, UpstreamFailure
from llm_gateway_server.core.redaction import mask_echoes, redact, secret_forms, url_secrets
from llm_gateway_server.core.types import ChatDelta, Message, ProviderChatRequest, Role
from llm_gateway_server.providers.openai_compatible import OpenAICompatibleProvider
from llm_gateway_server.providers.sse import EventTooLarge, SSEEvent, SSEParser
from llm_gateway_server.providers.upstream_http import PoolWaitTimeout, pool_limit
from tests.fakes import Behaviour, FakeOpenAI, Fault

KEY = "sk-unit-hostile-0123456789abcdef"
PROMPT = "Remember that my locker combination is 31-07-99 and my dog is called Biscuit."
REQUEST = ProviderChatRequest(model="m", messages=(Message(Role.USER, PROMPT),))


def native(
    api_base: str, *, api_key: str | None = KEY, **options: object
) -> OpenAICompatibleProvider:
    config = ProviderConfig(kind=ProviderKind.OPENAI_COMPATIBLE, api_base=api_base, **options)  # type: ignore[arg-type]
    return OpenAICompatibleProvider("p", config, api_key=api_key)


@pytest.fixture(autouse=True)
async def nothing_left_open(fake_openai: FakeOpenAI) -> AsyncIterator[None]:
    """Every test leaves no task running and, once its adapter is closed, no connection."""
    yield
    await fake_openai.wait_no_connections(timeout=2.0)
    current = asyncio.current_task()
    # The fake's own handlers of dropped connections take a few loop turns to finish.
    for _ in range(100):
        leaked = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
        if not leaked:
            break
        await asyncio.sleep(0.01)
    assert not leaked, f"tasks left behind: {leaked}"


@pytest.fixture
async def provider(fake_openai: FakeOpenAI) -> AsyncIterator[OpenAICompatibleProvider]:
    adapter = native(fake_openai.base_url)
    yield adapter
    await adapter.aclose()


@pytest.fixture
def unaccepting_port() -> Iterator[int]:
    """A loopback port whose accept queue is full: new connections hang in SYN."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(4):  # fill the backlog; later SYNs are dropped, connect never completes
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)
    yield port
    for filler in fillers:
        filler.close()
    listener.close()


async def test_a_connect_timeout_says_so(unaccepting_port: int) -> None:
    adapter = native(f"http://127.0.0.1:{unaccepting_port}/v1", connect_timeout_s=0.2)
    try:
        with pytest.raises(UpstreamError) as err:
            await adapter.chat(REQUEST, timeout_s=30)
    finally:
        await adapter.aclose()
    assert err.value.failure is UpstreamFailure.CONNECT
    assert "cannot connect within 0.2s (connect_timeout_s)" in err.value.message
    assert "did not answer" not in err.value.message


@pytest.mark.parametrize("api_key", [KEY, None], ids=["with-key", "userinfo-only"])
async def test_userinfo_in_api_base_never_fails_per_call(
    fake_openai: FakeOpenAI, api_key: str | None
) -> None:
    base = fake_openai.base_url.replace("http://", "http://bob:s%40lt@")
    adapter = native(base, api_key=api_key)
    try:
        answer = await adapter.chat(REQUEST, timeout_s=5)
        deltas = [d async for d in adapter.stream(REQUEST, timeout_s=5)]
    finally:
        await adapter.aclose()
    assert answer.content == "Hello from the fake."
    assert deltas[-1].finish_reason is not None
    sent = fake_openai.last_request.headers["Authorization"]
    basic = "Basic " + base64.b64encode(b"bob:s@lt").decode()
    assert sent == (f"Bearer {KEY}" if api_key else basic)


async def test_a_configured_authorization_header_wins(fake_openai: FakeOpenAI) -> None:
    base = fake_openai.base_url.replace("http://", "http://bob:pw@")
    adapter = native(base, headers={"Authorization": "Token abc-123456"})
    try:
        await adapter.chat(REQUEST, timeout_s=5)
    finally:
        await adapter.aclose()
    assert fake_openai.last_request.headers["Authorization"] == "Token abc-123456"


async def test_unary_body_over_the_cap_is_refused(fake_openai: FakeOpenAI) -> None:
    fake_openai.behaviour = Behaviour(oversize_bytes=3 * 1024 * 1024)
    adapter = native(fake_openai.base_url, max_response_bytes=1024 * 1024)
    try:
        with pytest.raises(UpstreamError) as err:
            await adapter.chat(REQUEST, timeout_s=10)
    finally:
        await adapter.aclose()
    assert err.value.failure is UpstreamFailure.BAD_RESPONSE
    assert "1048576 bytes (max_response_bytes)" in err.value.message
    await fake_openai.wait_no_connections()


async def test_a_body_that_is_not_json_is_refused_at_its_first_bytes(
    fake_openai: FakeOpenAI, provider: OpenAICompatibleProvider
) -> None:
    fake_openai.behaviour = Behaviour(
        fault=Fault.HTTP_ERROR, status=200, error_body=f"<html>echo: {PROMPT} {KEY}</html>"
    )
    with pytest.raises(UpstreamError) as err:
        await provider.chat(REQUEST, timeout_s=5)
    assert err.value.failure is UpstreamFailure.BAD_RESPONSE
    assert "not JSON" in err.value.message
    assert KEY not in err.value.message and "Biscuit" not in err.value.message


async def test_stream_line_over_the_event_cap_is_refused(fake_openai: FakeOpenAI) -> None:
    fake_openai.behaviour = Behaviour(oversize_bytes=4 * 1024 * 1024)
    adapter = native(fake_openai.base_url, max_event_bytes=64 * 1024)
    got: list[ChatDelta] = []

    async def consume() -> None:
        async for delta in adapter.stream(REQUEST, timeout_s=10):
            got.append(delta)

    try:
        with pytest.raises(UpstreamError) as err:
            await consume()
    finally:
        await adapter.aclose()
    assert got == []
    assert err.value.failure is UpstreamFailure.BAD_RESPONSE
    assert "65536 bytes (max_event_bytes)" in err.value.message


async def test_mid_stream_error_echoing_the_prompt_is_cleaned(
    fake_openai: FakeOpenAI, provider: OpenAICompatibleProvider
) -> None:
    fake_openai.behaviour = Behaviour(
        stream_error={"error": {"message": f"bad input {PROMPT!r} with key {KEY}", "code": 500}}
    )
    with pytest.raises(UpstreamError) as err:
        _ = [d async for d in provider.stream(REQUEST, timeout_s=5)]
    assert "bad input" in err.value.message
    assert "Biscuit" not in err.value.message and KEY not in err.value.message


def test_parser_caps_lines_and_events_keeping_what_came_before() -> None:
    parser = SSEParser(max_event_bytes=100)
    assert parser.feed(b"data: ok\n\n" + b"x" * 60) == [SSEEvent("ok")]
    with pytest.raises(EventTooLarge) as err:
        parser.feed(b"y" * 60)
    assert err.value.what == "line" and err.value.events == []
    parser = SSEParser(max_event_bytes=100)
    with pytest.raises(EventTooLarge) as err:
        parser.feed(b"data: a\n\n" + b"data: 0123456789012345678901234567890123456789\n" * 3)
    assert err.value.what == "event" and err.value.events == [SSEEvent("a")]


def test_parser_joins_a_line_split_over_many_chunks_once() -> None:
    parser = SSEParser(max_event_bytes=10**9)
    chunk = b"z" * 65536
    for _ in range(160):  # 10 MB without a newline: pieces are kept, not concatenated
        assert parser.feed(chunk) == []
    assert parser.feed(b"\n\n") == []  # an unknown field (the line is all 'z') dispatches nothing
    assert parser.feed(b"data: after\n\n") == [SSEEvent("after")]


def test_secret_forms_and_userinfo_forms() -> None:
    assert "a%2Fb%3Dc%2B" in secret_forms("a/b=c+")
    forms = url_secrets("https://us%20er:p%40ss@host/v1")
    assert {"us er", "p@ss", "p%40ss", base64.b64encode(b"us er:p@ss").decode()} <= set(forms)
    assert url_secrets("http://host/v1") == ()
    header = "Authorization: Basic " + base64.b64encode(b"us er:p@ss").decode()
    assert "dXMgZXI6cEBzcw" not in redact(header)  # the Basic pattern, even without forms


def test_echo_masking_whole_escaped_and_truncated() -> None:
    escaped = PROMPT.replace("'", "\\'")
    for text in (f"got {PROMPT}", f'{{"content": "{escaped}"}}', f"prompt: {PROMPT[:40]}..."):
        masked = mask_echoes(text, [PROMPT])
        assert "locker combination" not in masked and "[request text]" in masked
    assert mask_echoes("model m not found", [PROMPT]) == "model m not found"


def test_snapshot_secrets_cover_keys_headers_and_userinfo() -> None:
    snapshot = parse_config(
        "providers:\n"
        "  a: {kind: openai_compatible, api_base: 'http://u:pw%21x@h/v1', locality: local}\n"
        "  b: {kind: openai_compatible, api_base: 'http://h/v1', api_key_env: K,"
        " headers: {X-Team: '${TEAM_TOKEN}', Accept: application/json}}\n"
        "routes: {chat: {targets: [{provider: a, model: m}]}}\n",
        env={"K": "key-0123456789", "TEAM_TOKEN": "team/secret+1"},
    )
    secrets = set(snapshot.secrets())
    assert {"key-0123456789", "team/secret+1", "team%2Fsecret%2B1", "pw!x", "pw%21x"} <= secrets
    assert base64.b64encode(b"u:pw!x").decode() in secrets
    assert "application/json" not in secrets


async def test_a_header_aiohttp_refuses_is_a_classified_failure(fake_openai: FakeOpenAI) -> None:
    # The config refuses CR and LF in headers at load (test_provider_config.py); the adapter
    # still turns a header aiohttp refuses into a classified failure, never a ValueError.
    config = ProviderConfig(
        kind=ProviderKind.OPENAI_COMPATIBLE, api_base=fake_openai.base_url
    ).model_copy(update={"headers": {"X-Team": "line\r\nInjected: 1"}})
    adapter = OpenAICompatibleProvider("p", config, api_key=KEY)
    try:
        with pytest.raises(UpstreamError) as err:
            await adapter.chat(REQUEST, timeout_s=5)
    finally:
        await adapter.aclose()
    assert err.value.failure is UpstreamFailure.BAD_RESPONSE
    assert "Injected" not in err.value.message  # a configured header value is a secret
    assert fake_openai.requests == []


def test_pool_limits() -> None:
    def limit(**options: int) -> int:
        config = ProviderConfig(
            kind=ProviderKind.OPENAI_COMPATIBLE, api_base="http://h/v1", **options
        )
        return pool_limit(config)

    assert limit() == 0  # no limit: the router's slots (or nothing) are the limit
    assert limit(max_in_flight=8) == 12
    assert limit(max_in_flight=8, max_connections=3) == 3
    assert limit(max_connections=500) == 500


async def test_a_wait_for_a_pooled_connection_past_the_deadline_says_so(
    fake_openai: FakeOpenAI,
) -> None:
    adapter = native(fake_openai.base_url, max_connections=1, connect_timeout_s=0.05)
    fake_openai.script(Behaviour(fault=Fault.HANG, hang_s=2.0))
    try:
        hung = asyncio.create_task(adapter.chat(REQUEST, timeout_s=1.5))
        while not fake_openai.requests:  # the one connection is taken
            await asyncio.sleep(0.01)
        with pytest.raises(PoolWaitTimeout) as err:
            await adapter.chat(REQUEST, timeout_s=0.3)
        with pytest.raises(UpstreamError):
            await hung
    finally:
        await adapter.aclose()
    assert err.value.failure is UpstreamFailure.TIMEOUT
    assert "no pooled connection came free" in err.value.message
    assert "max_connections 1" in err.value.message
    assert len(fake_openai.requests) == 1  # the second call never reached the upstream


async def test_a_stream_longer_than_the_answer_cap_is_cut(fake_openai: FakeOpenAI) -> None:
    fake_openai.behaviour = Behaviour(content=("x" * 1000 + " ") * 200)  # ~200 KB in 200 frames
    adapter = native(fake_openai.base_url, max_response_bytes=64 * 1024)
    got: list[ChatDelta] = []

    async def consume() -> None:
        async for delta in adapter.stream(REQUEST, timeout_s=10):
            got.append(delta)

    try:
        with pytest.raises(UpstreamError) as err:
            await consume()
    finally:
        await adapter.aclose()
    assert "a stream larger than 65536 bytes (max_response_bytes)" in err.value.message
    assert 0 < sum(len(d.content) for d in got) <= 64 * 1024


@pytest.mark.parametrize("api_base", ["http://[bad@x/v1", "not a url", "http://h:99999/v1"])
async def test_a_malformed_api_base_is_a_classified_failure_per_call(api_base: str) -> None:
    adapter = native(api_base)  # building never raises for an accepted config
    try:
        with pytest.raises(UpstreamError):
            await adapter.chat(REQUEST, timeout_s=2)
    finally:
        await adapter.aclose()
