"""Container health probe: one ``grpc.health.v1.Health/Check`` call, exit 0 only on SERVING.

The Dockerfile's HEALTHCHECK runs this with the image's own interpreter, so it needs nothing
beyond the grpcio and grpcio-health-checking wheels that the gateway already depends on.
Kubernetes does not use it: its native ``grpc`` probes call the same service directly.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

#: Defaults match llm_gateway_server.config.defaults (DEFAULT_LISTEN's port and
#: GATEWAY_SERVICE_NAME); tests/deploy checks that they stay in step.
DEFAULT_TARGET = "127.0.0.1:50051"
DEFAULT_SERVICE = "llmgateway.v1.GatewayService"
DEFAULT_TIMEOUT_S = 2.0

EXIT_SERVING = 0
EXIT_UNHEALTHY = 1


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default=DEFAULT_TARGET, help="host:port of the gRPC server")
    parser.add_argument(
        "--service",
        default=DEFAULT_SERVICE,
        help='service name to check; "" asks about the whole server (liveness)',
    )
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="seconds")
    return parser.parse_args(argv)


def check(target: str, service: str, timeout_s: float) -> tuple[bool, str]:
    """Ask ``target`` for the health of ``service``; return (serving, human-readable status)."""
    with grpc.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            response = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout_s)
        except grpc.RpcError as exc:
            # RpcError raised by a call is also a grpc.Call, which carries the status code.
            code = exc.code() if isinstance(exc, grpc.Call) else None
            return False, f"rpc failed: {code.name if code is not None else 'unknown'}"
    status_name = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
    return response.status == health_pb2.HealthCheckResponse.SERVING, status_name


def main(argv: Sequence[str] | None = None) -> int:
    """Run one health check and return the process exit code."""
    args = _parse_args(argv)
    serving, detail = check(args.target, args.service, args.timeout)
    print(f"{args.target} service={args.service!r}: {detail}")
    return EXIT_SERVING if serving else EXIT_UNHEALTHY


if __name__ == "__main__":
    sys.exit(main())
