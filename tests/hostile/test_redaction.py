"""No configured secret, in any form, and no request text reaches a caller's error, the JSON
logs or Health, however carelessly an upstream echoes the request in its error."""

from __future__ import annotations

import base64
from urllib.parse import quote

import grpc
import pytest

from llmgateway.v1 import chat_pb2
from tests.fakes import Behaviour, FakeOpenAI, Fault
from tests.hostile.conftest import GatewayProcess, Spawn, gateway_config

API_KEY = "sk-hostile-KEY-0123456789abcdef"
HEADER_TOKEN = "hdr-TOKEN-9f8e7d6c5b4a"
USER, PASSWORD = "alice", "p@ss:W0rd-xyz"
PROMPT = (
    "Please keep this between us: the launch code is 4471-TOPSECRET-ALPHA and the merger "
    "with Initech closes on Friday. Summarise the memo below in three bullet points."
)
SECRETS = [
    API_KEY,
    HEADER_TOKEN,
    PASSWORD,
    quote(PASSWORD, safe=""),
    base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode(),
    "TOPSECRET",
    "launch code",
    "Initech",
]


def providers(creds_url: str, keyed_url: str) -> str:
    common = "locality: local, timeout_s: 10, retry: {max_attempts: 1}, probe: {enabled: false}"
    # Userinfo in api_base (sent as Basic); a key from the environment plus a header
    # interpolated from another variable.
    userinfo = f"{USER}:{quote(PASSWORD, safe='')}@"
    creds_base = creds_url.replace("http://", f"http://{userinfo}")
    return (
        f"  creds: {{kind: openai_compatible, api_base: '{creds_base}', {common}}}\n"
        f"  keyed: {{kind: openai_compatible, api_base: '{keyed_url}', {common},"
        " api_key_env: HOSTILE_KEY, headers: {X-Org-Token: '${HOSTILE_HEADER}'}}\n"
    )


ROUTES = (
    "  viacreds: {targets: [{provider: creds, model: m}]}\n"
    "  viakey: {targets: [{provider: keyed, model: m}]}\n"
)


async def call(gw: GatewayProcess, route: str, *, streaming: bool) -> None:
    message = chat_pb2.Message(role=chat_pb2.ROLE_USER, content=PROMPT)
    if streaming:
        request = chat_pb2.StreamChatRequest(model=route, messages=[message])
        _ = [m async for m in gw.stub.StreamChat(request, timeout=10)]
    else:
        await gw.stub.Chat(chat_pb2.ChatRequest(model=route, messages=[message]), timeout=10)


def leaks(text: str) -> list[str]:
    return [s for s in SECRETS if s.lower() in text.lower()]


@pytest.mark.parametrize("status", [500, 400])
@pytest.mark.parametrize("streaming", [False, True], ids=["chat", "stream"])
async def test_an_echoing_upstream_leaks_nothing(
    spawn_gateway: Spawn, status: int, streaming: bool
) -> None:
    echo = Behaviour(fault=Fault.HTTP_ERROR, status=status, echo_request=True)
    async with FakeOpenAI(echo) as creds, FakeOpenAI(echo) as keyed:
        gw = await spawn_gateway(
            gateway_config(providers(creds.base_url, keyed.base_url), ROUTES),
            env={"HOSTILE_KEY": API_KEY, "HOSTILE_HEADER": HEADER_TOKEN},
        )
        errors: list[grpc.aio.AioRpcError] = []
        for route in ("viacreds", "viakey"):
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await call(gw, route, streaming=streaming)
            errors.append(info.value)
        # The upstream did receive every secret, and echoed them all back.
        sent = (
            creds.last_request.headers["Authorization"] + keyed.last_request.headers["X-Org-Token"]
        )
        assert base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode() in sent
        assert HEADER_TOKEN in sent
        assert keyed.last_request.headers["Authorization"] == f"Bearer {API_KEY}"
        for error in errors:
            details = error.details() or ""
            # The upstream's status and its own words survive the cleaning.
            assert f"HTTP {status}" in details
            assert "the fake upstream failed" in details
            assert leaks(details) == []
            trailers = b"".join(
                v for _, v in error.trailing_metadata() or () if isinstance(v, bytes)
            )
            assert leaks(trailers.decode(errors="replace")) == []
        health = await gw.health()
        last_errors = " ".join(t.last_error for t in health.targets)
        if status == 500:  # a caller-caused 400 is no mark against the target
            assert "HTTP 500" in last_errors
        assert leaks(str(health)) == []
        log = gw.log_text()
        assert gw.log_records(), "the gateway writes JSON log lines"
        assert leaks(log) == []
