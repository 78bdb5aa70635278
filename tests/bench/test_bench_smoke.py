"""The benchmark harness (bench/) still works: a few requests, no peers, no timing asserted."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

# bench/ is a top-level folder of the repository, not an installed package.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench import chart, processes, report, run
from bench.loadgen import GrpcCaller, HttpCaller, measure_latency, measure_load
from bench.passthrough import start_passthrough
from bench.results import RunContext
from bench.upstream import UpstreamCounters, UpstreamOptions, start_upstream
from bench.upstream_stream import TOKENS


@pytest.fixture
async def upstream() -> AsyncIterator[tuple[str, UpstreamCounters]]:
    counters = UpstreamCounters()
    server = await start_upstream(options=UpstreamOptions(stream_rate=0), counters=counters)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/v1", counters
    finally:
        server.close()
        await server.wait_closed()


async def test_upstream_speaks_enough_openai(upstream: tuple[str, UpstreamCounters]) -> None:
    base, counters = upstream
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/models") as r:
            assert r.status == 200
            assert (await r.json())["data"][0]["id"] == "bench-model"
        async with http.get(base.removesuffix("/v1") + "/health") as r:
            assert r.status == 200
        async with http.get(f"{base}/nothing") as r:
            assert r.status == 404

        async def chunked() -> AsyncIterator[bytes]:
            yield b'{"model": "m", "max_tokens": 3, '
            yield b'"messages": [{"role": "user", "content": "hello"}]}'

        async with http.post(f"{base}/chat/completions", data=chunked()) as r:
            answer = await r.json()
        assert answer["choices"][0]["message"]["content"] == "".join(TOKENS[:3])
        assert answer["usage"]["completion_tokens"] == 3
        body = {"model": "m", "stream": True, "max_tokens": 5, "messages": []}
        body["stream_options"] = {"include_usage": True}
        async with http.post(f"{base}/chat/completions", json=body) as r:
            text = (await r.read()).decode()
        assert text.count('"content":"t') == 5
        assert '"usage":{"prompt_tokens":1,"completion_tokens":5' in text
        assert text.endswith("data: [DONE]\n\n")
    assert counters.chats == 1
    assert counters.streams == 1


async def test_baseline_forwards_and_load_generator_counts(
    upstream: tuple[str, UpstreamCounters],
) -> None:
    base, counters = upstream
    server, port, servicer = await start_passthrough("127.0.0.1:0", base)
    grpc_caller = GrpcCaller(f"127.0.0.1:{port}", "bench-model")
    http_caller = HttpCaller(base, "bench-model")
    try:
        for caller in (grpc_caller, http_caller):
            await caller.chat()
            seen: list[int] = []
            assert await caller.stream(40, seen.append) == 40
            assert sum(seen) == 40
        latency = await measure_latency(grpc_caller, requests=5, warmup=1)
        assert len(latency.samples_ms) == 5
        assert latency.errors == 0
        load = await measure_load(
            grpc_caller, concurrency=4, seconds=0.2, warmup_s=0.05, stream_tokens=8
        )
        assert load.completed > 0
        assert load.errors == 0
        assert load.tokens > 0
        assert "client" in load.cpu_percent
    finally:
        await grpc_caller.aclose()
        await http_caller.aclose()
        await server.stop(None)
        await servicer.aclose()
    assert counters.chats >= 2 + 5
    assert counters.streams >= 2


@pytest.mark.slow
async def test_harness_runs_the_baseline_as_processes(tmp_path: Path) -> None:
    env = {
        "BENCH_SYSTEMS": "baseline",
        "BENCH_ROUNDS": "2",
        "BENCH_SECONDS": "0.1",
        "BENCH_WARMUP_SECONDS": "0.05",
        "BENCH_LATENCY_REQUESTS": "10",
        "BENCH_LATENCY_WARMUP": "1",
        "BENCH_STREAM_RATE": "0",
        "BENCH_CLIENT_CPUS": "",
        "BENCH_SUT_CPUS": "",
        "BENCH_UPSTREAM_CPUS": "",
        "BENCH_OUT": str(tmp_path),
    }
    settings = run.Settings.from_env(env)
    results = await run.run(settings)

    by_key = {r.key: r for r in results}
    assert set(by_key) == {"baseline"}
    baseline = by_key["baseline"]
    assert baseline.ran, baseline.note
    assert baseline.errors() == 0
    assert baseline.unary_rps(32) > 0
    assert baseline.stream_tps(512) > 0
    assert baseline.rss_mb > 0
    assert baseline.serving_s > 0
    assert baseline.latency is not None
    assert len(baseline.latency.samples_ms) == 10  # pooled over both rounds
    assert all(len(rates) == 2 for rates in baseline.round_rates.values())
    # Every process the harness started is gone.
    assert all(not Path(f"/proc/{pid}").exists() for pid in _logged_pids(tmp_path))

    ctx = RunContext(
        started="now",
        command="test",
        machine="test",
        python="3",
        cores=os.cpu_count() or 1,
        client_cpus="any",
        sut_cpus="any",
        upstream_cpus="any",
        pinned=False,
        load_before="0",
    )
    text = report.render(results, ctx)
    assert "| bare pass-through | grpc |" in text
    assert "gateway measured" in text  # the gateway was not run: its targets say so
    chart.write_chart(results, tmp_path / "chart.png", "test")
    assert (tmp_path / "chart.png").read_bytes().startswith(b"\x89PNG")


@pytest.mark.slow
@pytest.mark.redis
async def test_harness_runs_the_gateway_on_a_redis_20_ms_away(tmp_path: Path) -> None:
    if not shutil.which("redis-server"):
        pytest.skip("redis-server is not installed (run `make redis-server`)")
    env = {
        "BENCH_SYSTEMS": "gateway-redis-20ms",
        "BENCH_ROUNDS": "1",
        "BENCH_SECONDS": "0.2",
        "BENCH_WARMUP_SECONDS": "0.5",
        "BENCH_LATENCY_REQUESTS": "5",
        "BENCH_LATENCY_WARMUP": "1",
        "BENCH_STREAM_RATE": "0",
        "BENCH_CLIENT_CPUS": "",
        "BENCH_SUT_CPUS": "",
        "BENCH_UPSTREAM_CPUS": "",
        "BENCH_OUT": str(tmp_path),
    }
    results = await run.run(run.Settings.from_env(env))
    (far,) = results
    assert far.ran, far.note
    assert far.errors() == 0
    assert far.unary_rps(32) > 0
    # Its sidecars (redis-server, the delay proxy) ran and are gone with it.
    names = {
        p.log_path.stem for p in processes.started_processes() if p.log_path.parent == tmp_path
    }
    assert {"gateway-redis-20ms-redis", "gateway-redis-20ms-delay"} <= names
    assert all(not Path(f"/proc/{pid}").exists() for pid in _logged_pids(tmp_path))


def _logged_pids(log_dir: Path) -> list[int]:
    return [p.pid for p in processes.started_processes() if p.log_path.parent == log_dir]
