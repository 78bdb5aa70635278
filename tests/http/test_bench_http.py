"""The benchmark's HTTP facade row runs: the gateway as a process, called over HTTP (no timing)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench import report_http, run


@pytest.mark.slow
async def test_harness_runs_the_http_facade(tmp_path: Path) -> None:
    env = {
        "BENCH_SYSTEMS": "gateway-http",
        "BENCH_ROUNDS": "1",
        "BENCH_SECONDS": "0.1",
        "BENCH_WARMUP_SECONDS": "0.05",
        "BENCH_LATENCY_REQUESTS": "5",
        "BENCH_LATENCY_WARMUP": "1",
        "BENCH_STREAM_RATE": "0",
        "BENCH_CLIENT_CPUS": "",
        "BENCH_SUT_CPUS": "",
        "BENCH_UPSTREAM_CPUS": "",
        "BENCH_OUT": str(tmp_path),
    }
    results = await run.run(run.Settings.from_env(env))
    (facade,) = results
    assert facade.key == "gateway-http"
    assert facade.ran, facade.note
    assert facade.errors() == 0
    assert facade.unary_rps(32) > 0
    assert facade.stream_tps(32) > 0
    # Without the peers, issue 12's targets say they could not be checked.
    rows = report_http.http_rows({r.key: r for r in results})
    assert any("vs Portkey" in row and "n/a" in row for row in rows)
