"""The image's HEALTHCHECK command, run as Docker would, against a real gRPC health service.

The command line is taken from the Dockerfile (only the address changes, to a free port), and
the server is a real grpc.aio server with the same aio HealthServicer the gateway registers.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer

from llm_gateway_server.config import defaults

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "deploy" / "docker" / "grpc_health_check.py"
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def image_healthcheck(target: str) -> list[str]:
    """The Dockerfile's HEALTHCHECK argv, run with this interpreter against ``target``."""
    text = (REPO_ROOT / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ")
    match = re.search(r"^HEALTHCHECK .*? CMD (\[.*\])$", text, re.MULTILINE)
    assert match, "no exec-form HEALTHCHECK in the Dockerfile"
    argv: list[str] = json.loads(match.group(1))
    assert argv[0] == "python" and argv[1].endswith(SCRIPT.name), argv
    argv[argv.index("--target") + 1] = target
    return [sys.executable, str(SCRIPT), *argv[2:]]


def readiness_check(target: str) -> list[str]:
    """The same script asking for the gateway service's readiness (Kubernetes' question)."""
    argv = image_healthcheck(target)
    argv[argv.index("--service") + 1] = defaults.GATEWAY_SERVICE_NAME
    return argv


async def run(argv: list[str]) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode()


@pytest.fixture
async def health_server() -> AsyncIterator[tuple[HealthServicer, str]]:
    server = grpc.aio.server()
    health = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield health, f"127.0.0.1:{port}"
    finally:
        await server.stop(None)


async def test_healthy_only_while_the_gateway_service_is_serving(
    health_server: tuple[HealthServicer, str],
) -> None:
    health, target = health_server
    await health.set(defaults.GATEWAY_SERVICE_NAME, SERVING)
    assert await run(readiness_check(target)) == (
        0,
        f"{target} service='{defaults.GATEWAY_SERVICE_NAME}': SERVING\n",
    )

    await health.set(defaults.GATEWAY_SERVICE_NAME, NOT_SERVING)
    code, out = await run(readiness_check(target))
    assert (code, out.strip().rsplit(" ", 1)[-1]) == (1, "NOT_SERVING")

    # What the gateway does on SIGTERM: every service turns NOT_SERVING while it drains.
    await health.set(defaults.GATEWAY_SERVICE_NAME, SERVING)
    await health.enter_graceful_shutdown()
    assert (await run(readiness_check(target)))[0] == 1


async def test_unhealthy_before_readiness_is_reported(
    health_server: tuple[HealthServicer, str],
) -> None:
    # The whole server answers, but the gateway service has not been registered yet.
    _, target = health_server
    code, out = await run(readiness_check(target))
    assert code == 1 and "NOT_FOUND" in out


async def test_image_healthcheck_is_liveness_of_the_whole_server(
    health_server: tuple[HealthServicer, str],
) -> None:
    """Healthy while the process serves, even when the gateway service is not ready."""
    health, target = health_server
    await health.set(defaults.GATEWAY_SERVICE_NAME, NOT_SERVING)
    assert defaults.LIVENESS_SERVICE_NAME == ""
    assert await run(image_healthcheck(target)) == (0, f"{target} service='': SERVING\n")


async def test_unhealthy_when_nothing_listens() -> None:
    server = grpc.aio.server()
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    await server.stop(None)  # the port is now closed
    argv = [*image_healthcheck(f"127.0.0.1:{port}"), "--timeout", "1"]
    code, out = await run(argv)
    assert code == 1 and "UNAVAILABLE" in out
