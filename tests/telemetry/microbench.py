"""Per-call cost of telemetry: one call record plus one attempt scope, as routing drives them.

Not a test (no assertion on time); run it by hand:

    .venv/bin/python -m tests.telemetry.microbench

Measured on the 2-core dev box (Python 3.11, best of 5 x 20k, load ~1), us per RPC:
metrics only 15; metrics + JSON log line (the default, no OTLP env) 34; the same with an
incoming traceparent 46; text log line 37; two recorded spans with SimpleSpanProcessor 119,
with BatchSpanProcessor 137; spans sampled at 10% 62. At 2000 RPC/s on 2 cores an RPC has
~1000 us of CPU, so the default costs ~3.5%; recording every span costs ~12-14% before the
OTLP encoding, so high-rate deployments set OTEL_TRACES_SAMPLER=parentbased_traceidratio.
"""

from __future__ import annotations

import logging
import os
import timeit
from collections.abc import Sequence

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

from llm_gateway_server.config.telemetry import LogFormat, TelemetryConfig
from llm_gateway_server.core.types import AttemptOutcome, FinishReason, Privacy, Usage
from llm_gateway_server.routing.observer import AttemptInfo
from llm_gateway_server.telemetry.logging import configure_logging
from llm_gateway_server.telemetry.setup import Telemetry, setup_telemetry
from tests.telemetry.records import start as start_call

INFO = AttemptInfo(
    route="chat",
    provider="ollama",
    provider_kind="openai_compatible",
    model="llama3.2",
    attempt=1,
    operation="chat",
    streaming=False,
    breaker_state="closed",
    privacy=Privacy.STRICT,
    server_address="localhost:11434",
    temperature=0.2,
    max_tokens=64,
)
USAGE = Usage(prompt_tokens=12, completion_tokens=34)
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


class _DropExporter(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def one_rpc(telemetry: Telemetry, metadata: Sequence[tuple[str, str]]) -> None:
    """What transport and routing do for one successful Chat."""
    scope = start_call(telemetry, "Chat", metadata)
    scope.set_request(
        route="chat", privacy=Privacy.STRICT, model_requested="chat", temperature=0.2, max_tokens=64
    )
    scope.set_cache(False)
    with telemetry.observer.attempt(INFO) as attempt:
        attempt.finish(
            AttemptOutcome.SUCCESS,
            usage=USAGE,
            response_model="llama3.2:3b",
            finish_reason=FinishReason.STOP,
        )
    scope.set_result(
        provider="ollama",
        model="llama3.2",
        usage=USAGE,
        cost_usd=0.0,
        finish_reason=FinishReason.STOP,
        attempts=1,
        fallbacks=0,
        cached=False,
    )
    scope.end("OK")


def measure(label: str, telemetry: Telemetry, metadata: Sequence[tuple[str, str]] = ()) -> None:
    """Print the mean microseconds per RPC (best of 5 runs)."""
    number = 20_000
    for _ in range(2_000):
        one_rpc(telemetry, metadata)
    best = min(timeit.repeat(lambda: one_rpc(telemetry, metadata), number=number, repeat=5))
    print(f"{label:<58} {best / number * 1e6:7.1f} us/RPC")


def main() -> None:
    """Run each configuration."""
    config = TelemetryConfig(metrics_listen="", log_format=LogFormat.JSON)
    with open(os.devnull, "w", encoding="utf-8") as sink:
        off = setup_telemetry(config, env={})
        logging.getLogger().setLevel(logging.WARNING)
        measure("metrics only (no log line, no tracing)", off)
        configure_logging(config, stream=sink)
        measure("metrics + JSON log line (default: no OTLP env)", off)
        measure("  ... with an incoming traceparent", off, [("traceparent", TRACEPARENT)])
        text = TelemetryConfig(metrics_listen="", log_format=LogFormat.TEXT)
        configure_logging(text, stream=sink)
        measure("metrics + text log line", off)
        configure_logging(config, stream=sink)
        traced = setup_telemetry(config, env={}, span_exporter=_DropExporter())
        measure("metrics + log + 2 spans (SimpleSpanProcessor, drop)", traced)
        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(_DropExporter()))
        batched = Telemetry(
            metrics=off.metrics, tracer_provider=provider, record_content=False,
            metrics_address=None,
        )  # fmt: skip
        measure("metrics + log + 2 spans (BatchSpanProcessor, drop)", batched)
        provider.shutdown()
        # What OTEL_TRACES_SAMPLER=parentbased_traceidratio, OTEL_TRACES_SAMPLER_ARG=0.1 gives.
        sampled = TracerProvider(sampler=ParentBased(TraceIdRatioBased(0.1)))
        sampled.add_span_processor(BatchSpanProcessor(_DropExporter()))
        tenth = Telemetry(
            metrics=off.metrics, tracer_provider=sampled, record_content=False,
            metrics_address=None,
        )  # fmt: skip
        measure("metrics + log + spans sampled at 10% (Batch, drop)", tenth)
        sampled.shutdown()


if __name__ == "__main__":
    main()
