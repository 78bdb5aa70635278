"""TLS and mutual TLS on the gRPC port, with certificates made at test time (trustme)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest
import trustme

from llmgateway.v1 import chat_pb2, gateway_service_pb2_grpc
from tests.fakes import FakeOpenAI
from tests.service.conftest import Start, config_for


def _tls_config(upstream: FakeOpenAI, tmp_path: Path, ca: trustme.CA, *, mutual: bool) -> str:
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "cert.pem"))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    client_ca = f", client_ca_file: '{tmp_path / 'ca.pem'}'" if mutual else ""
    tls = f"tls: {{cert_file: '{tmp_path / 'cert.pem'}', key_file: '{tmp_path / 'key.pem'}'{client_ca}}}"
    return config_for(upstream.base_url).replace(
        "drain_delay_s: 0.5}", f"drain_delay_s: 0.5, {tls}}}"
    )


def _request() -> chat_pb2.ChatRequest:
    return chat_pb2.ChatRequest(messages=[chat_pb2.Message(role=chat_pb2.ROLE_USER, content="hi")])


async def test_tls_serves_and_refuses_plaintext(
    start_gateway: Start, upstream: FakeOpenAI, tmp_path: Path
) -> None:
    ca = await asyncio.to_thread(trustme.CA)  # key generation: off the loop
    gw = await start_gateway(
        await asyncio.to_thread(_tls_config, upstream, tmp_path, ca, mutual=False)
    )
    creds = grpc.ssl_channel_credentials(root_certificates=ca.cert_pem.bytes())
    async with grpc.aio.secure_channel(gw.address, creds) as channel:
        answer = await gateway_service_pb2_grpc.GatewayServiceStub(channel).Chat(
            _request(), timeout=5
        )
    assert answer.content
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await gw.stub.Chat(_request(), timeout=2)  # the fixture's channel is plaintext
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_mutual_tls_requires_a_client_certificate(
    start_gateway: Start, upstream: FakeOpenAI, tmp_path: Path
) -> None:
    ca = await asyncio.to_thread(trustme.CA)  # key generation: off the loop
    gw = await start_gateway(
        await asyncio.to_thread(_tls_config, upstream, tmp_path, ca, mutual=True)
    )
    client = await asyncio.to_thread(ca.issue_cert, "client.example")
    with_cert = grpc.ssl_channel_credentials(
        root_certificates=ca.cert_pem.bytes(),
        private_key=client.private_key_pem.bytes(),
        certificate_chain=client.cert_chain_pems[0].bytes(),
    )
    async with grpc.aio.secure_channel(gw.address, with_cert) as channel:
        answer = await gateway_service_pb2_grpc.GatewayServiceStub(channel).Chat(
            _request(), timeout=5
        )
    assert answer.content
    without_cert = grpc.ssl_channel_credentials(root_certificates=ca.cert_pem.bytes())
    async with grpc.aio.secure_channel(gw.address, without_cert) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await gateway_service_pb2_grpc.GatewayServiceStub(channel).Chat(_request(), timeout=5)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert len(upstream.requests) == 1
