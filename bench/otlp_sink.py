"""An OTLP/gRPC trace sink: accepts every export, counts the spans, keeps nothing.

The gateway's telemetry-on run exports its spans here, so the benchmark pays for creating,
batching and serializing spans as in production, without a collector on the measured core.
On SIGTERM it prints ``spans received: N``.

    python -m bench.otlp_sink --port 4317
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

#: The line printed on exit, followed by the span count.
SPANS_LINE = "spans received:"


class TraceSink(trace_service_pb2_grpc.TraceServiceServicer):
    """Counts the spans of every export request."""

    def __init__(self) -> None:
        self.spans = 0

    async def Export(
        self,
        request: trace_service_pb2.ExportTraceServiceRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        """Count and drop."""
        for resource in request.resource_spans:
            for scope in resource.scope_spans:
                self.spans += len(scope.spans)
        return trace_service_pb2.ExportTraceServiceResponse()


async def _serve(port: int) -> None:
    server = grpc.aio.server()
    sink = TraceSink()
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(sink, server)  # type: ignore[no-untyped-call]
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(1.0)
    print(f"{SPANS_LINE} {sink.spans}", flush=True)


def main(argv: list[str] | None = None) -> None:
    """Run the sink until SIGTERM."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    asyncio.run(_serve(args.port))


if __name__ == "__main__":
    main()
