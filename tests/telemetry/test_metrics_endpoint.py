"""The scrape endpoint, fetched over real HTTP, counts known traffic."""

from __future__ import annotations

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from llm_gateway_server.config.telemetry import TelemetryConfig
from llm_gateway_server.core.types import AttemptOutcome, FinishReason, Privacy, Usage
from llm_gateway_server.telemetry.setup import Telemetry, metrics_address
from tests.telemetry.records import start as start_call

from .conftest import MakeTelemetry, attempt_info

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(telemetry: Telemetry) -> Samples:
    """GET /metrics and index every sample by name and labels."""
    assert telemetry.metrics_port is not None
    url = f"http://127.0.0.1:{telemetry.metrics_port}/metrics"
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = await response.text()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def successful_chat(telemetry: Telemetry, *, stream: bool = False) -> None:
    usage = Usage(prompt_tokens=10, completion_tokens=4)
    with start_call(telemetry, "StreamChat" if stream else "Chat", []) as scope:
        scope.set_request(route="chat", privacy=Privacy.STRICT, model_requested="chat")
        scope.set_cache(False)
        info = attempt_info("ollama", "llama3.2", 1, streaming=stream)
        with telemetry.observer.attempt(info) as attempt:
            if stream:
                attempt.first_chunk()
                scope.first_token()
            attempt.finish(AttemptOutcome.SUCCESS, usage=usage, response_model="llama3.2:3b")
        scope.set_result(
            provider="ollama",
            model="llama3.2",
            usage=usage,
            cost_usd=0.002,
            finish_reason=FinishReason.STOP,
            attempts=1,
            fallbacks=0,
            cached=False,
        )


async def test_metrics_endpoint_counts_known_traffic(make_telemetry: MakeTelemetry) -> None:
    telemetry = make_telemetry(metrics_listen="127.0.0.1:0")
    await telemetry.start()
    assert telemetry.metrics_port

    for _ in range(3):
        successful_chat(telemetry)
    successful_chat(telemetry, stream=True)
    with start_call(telemetry, "Chat", []) as cached:  # a cache hit spends nothing upstream
        cached.set_request(route="chat", privacy=Privacy.STRICT, model_requested="chat")
        cached.set_cache(True)
        cached.set_result(
            provider="ollama",
            model="llama3.2",
            usage=Usage(10, 4),
            cost_usd=None,
            finish_reason="stop",
            attempts=0,
            fallbacks=0,
            cached=True,
        )
    for reason in ("RATE_LIMITED", "TOKEN_RATE_LIMITED", "BUDGET_EXCEEDED"):
        rejected = start_call(telemetry, "Chat", [])
        rejected.end("RESOURCE_EXHAUSTED", error_reason=reason)
    failed = start_call(telemetry, "Chat", [])
    failed.set_request(route="chat", privacy=Privacy.STRICT, model_requested="chat")
    with telemetry.observer.attempt(attempt_info("cloud", "gpt-x", 1)) as attempt:
        attempt.finish(AttemptOutcome.TIMEOUT, error="timed out")
    telemetry.observer.fallback("chat", "cloud", "gpt-x")
    failed.end("UNAVAILABLE", error_reason="ALL_TARGETS_FAILED")
    telemetry.observer.breaker_transition("cloud", "gpt-x", "closed", "open")
    telemetry.observer.breaker_transition("ollama", "llama3.2", "open", "half_open")

    samples = await scrape(telemetry)
    ok = {
        "route": "chat",
        "provider": "ollama",
        "model": "llama3.2",
        "status": "OK",
        "caller": "anonymous",
    }
    assert value(samples, "llm_gateway_requests_total", **ok) == 5
    assert (
        value(
            samples,
            "llm_gateway_requests_total",
            route="chat",
            provider="",
            model="",
            status="UNAVAILABLE",
            caller="anonymous",
        )
        == 1
    )
    assert value(samples, "llm_gateway_fallbacks_total", route="chat") == 1
    assert value(samples, "llm_gateway_cache_requests_total", result="hit") == 1
    assert value(samples, "llm_gateway_cache_requests_total", result="miss") == 4
    assert value(samples, "llm_gateway_rejections_total", reason="rate_limited") == 2
    assert value(samples, "llm_gateway_rejections_total", reason="budget_exceeded") == 1
    assert value(samples, "llm_gateway_breaker_state", provider="cloud", model="gpt-x") == 2
    assert value(samples, "llm_gateway_breaker_state", provider="ollama", model="llama3.2") == 1
    assert value(samples, "llm_gateway_inflight_requests", provider="ollama") == 0
    # Four upstream-served chats spent tokens and money; the cache hit did not.
    target = {"route": "chat", "provider": "ollama", "model": "llama3.2"}
    assert value(samples, "llm_gateway_tokens_total", **target, direction="input") == 40
    assert value(samples, "llm_gateway_tokens_total", **target, direction="output") == 16
    spent = value(samples, "llm_gateway_cost_usd_total", **target, caller="anonymous")
    assert spent == pytest.approx(0.008)

    client = {
        "gen_ai_operation_name": "chat",
        "gen_ai_provider_name": "ollama",
        "gen_ai_request_model": "llama3.2",
        "gen_ai_response_model": "llama3.2:3b",
    }
    duration = "gen_ai_client_operation_duration_seconds_count"
    assert value(samples, duration, **client, error_type="") == 4
    assert (
        value(
            samples,
            duration,
            gen_ai_operation_name="chat",
            gen_ai_provider_name="cloud",
            gen_ai_request_model="gpt-x",
            gen_ai_response_model="",
            error_type="timeout",
        )
        == 1
    )
    tokens = "gen_ai_client_token_usage_sum"
    assert value(samples, tokens, **client, gen_ai_token_type="input") == 40
    assert value(samples, tokens, **client, gen_ai_token_type="output") == 16
    assert (
        value(samples, "gen_ai_client_operation_time_to_first_chunk_seconds_count", **client) == 1
    )
    server = "gen_ai_server_request_duration_seconds_count"
    assert value(samples, server, rpc_method="Chat", route="chat", status="OK") == 4
    assert value(samples, server, rpc_method="StreamChat", route="chat", status="OK") == 1
    ttft = "gen_ai_server_time_to_first_token_seconds_count"
    assert (
        value(
            samples,
            ttft,
            gen_ai_operation_name="chat",
            gen_ai_provider_name="ollama",
            gen_ai_request_model="llama3.2",
            route="chat",
        )
        == 1
    )
    # The latest-convention names only appear when opted in.
    assert not any(name.startswith("gen_ai_client_inference") for name, _ in samples)

    await telemetry.aclose()
    assert telemetry.metrics_port is None


async def test_latest_conventions_are_emitted_too_when_opted_in(
    make_telemetry: MakeTelemetry,
) -> None:
    telemetry = make_telemetry(
        metrics_listen="127.0.0.1:0",
        env={"OTEL_SEMCONV_STABILITY_OPT_IN": "http, gen_ai_latest_experimental"},
    )
    await telemetry.start()
    successful_chat(telemetry, stream=True)
    cloud = attempt_info("cloud", "gpt-x", 1)
    with start_call(telemetry, "Chat", []), telemetry.observer.attempt(cloud) as attempt:
        attempt.finish(AttemptOutcome.RATE_LIMITED)
    samples = await scrape(telemetry)
    client = {
        "gen_ai_operation_name": "chat",
        "gen_ai_provider_name": "ollama",
        "gen_ai_request_model": "llama3.2",
        "gen_ai_response_model": "llama3.2:3b",
    }
    assert (
        value(samples, "gen_ai_client_inference_duration_seconds_count", **client, error_type="")
        == 1
    )
    assert (
        value(samples, "gen_ai_client_inference_time_to_first_chunk_seconds_count", **client) == 1
    )
    usage = "gen_ai_client_inference_usage_input_tokens_total"
    assert value(samples, usage, **client, gen_ai_token_modality="unknown") == 10
    out = "gen_ai_client_inference_usage_output_tokens_total"
    assert value(samples, out, **client, gen_ai_token_modality="unknown") == 4
    per_op = "gen_ai_client_inference_operation_output_tokens_sum"
    assert value(samples, per_op, **client, error_type="") == 4
    # A failed call is still counted, with 0 tokens (as the conventions ask).
    failed = {
        "gen_ai_operation_name": "chat",
        "gen_ai_provider_name": "cloud",
        "gen_ai_request_model": "gpt-x",
        "gen_ai_response_model": "",
        "error_type": "rate_limited",
    }
    assert value(samples, "gen_ai_client_inference_operation_input_tokens_count", **failed) == 1
    # The v1.41 names stay, for dashboards built on them.
    assert (
        value(samples, "gen_ai_client_operation_duration_seconds_count", **client, error_type="")
        == 1
    )


async def test_endpoint_stops_and_off_means_no_port(make_telemetry: MakeTelemetry) -> None:
    telemetry = make_telemetry(metrics_listen="127.0.0.1:0")
    await telemetry.start()
    port = telemetry.metrics_port
    await telemetry.aclose()
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientConnectionError):
            await session.get(f"http://127.0.0.1:{port}/metrics")
    off = make_telemetry(metrics_listen="")
    await off.start()
    assert off.metrics_port is None


def test_each_worker_gets_its_own_metrics_port() -> None:
    config = TelemetryConfig(metrics_listen="0.0.0.0:9464")
    assert metrics_address(config, worker_index=0) == ("0.0.0.0", 9464)
    assert metrics_address(config, worker_index=3) == ("0.0.0.0", 9467)
    assert metrics_address(TelemetryConfig(metrics_listen="[::1]:0"), worker_index=2) == ("::1", 0)
    assert metrics_address(TelemetryConfig(metrics_listen=""), worker_index=1) is None
