"""The load generator: a grpc.aio client for gRPC systems, an aiohttp client for HTTP ones.

Every measurement is a closed loop bounded in time or count. Tokens are counted as text
matching ``bench.upstream_stream.TOKEN_PATTERN`` arrives, so a system that re-chunks a stream
is counted fairly.
"""

from __future__ import annotations

import asyncio
import os
import re
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp
import grpc
import orjson

from bench.upstream_stream import TOKEN_LEN, TOKEN_PATTERN, TOKENS
from llmgateway.v1 import chat_pb2, gateway_service_pb2_grpc

#: Tokens of a unary answer (small: unary runs measure per-request overhead).
UNARY_TOKENS = 16
_PROMPT = "Say something short about benchmarks."
_TOKEN_RE = re.compile(TOKEN_PATTERN)
_FIRST_TOKEN = TOKENS[0].encode()
_CALL_TIMEOUT_S = 60.0
#: How long calls still in flight at the end of a window may take to finish.
_DRAIN_TIMEOUT_S = 15.0


class Caller(Protocol):
    """One system as the load generator sees it."""

    async def chat(self) -> None:
        """One unary chat; raise when it fails or the answer is wrong."""

    async def stream(self, tokens: int, progress: Callable[[int], None]) -> int:
        """One streamed chat of ``tokens`` tokens; report each batch to ``progress``."""

    async def aclose(self) -> None:
        """Release connections."""


class GrpcCaller:
    """Calls llmgateway.v1 GatewayService over one HTTP/2 channel (how a real client would)."""

    def __init__(self, address: str, model: str) -> None:
        self._channel = grpc.aio.insecure_channel(address)
        self._stub = gateway_service_pb2_grpc.GatewayServiceStub(self._channel)
        message = chat_pb2.Message(role=chat_pb2.ROLE_USER, content=_PROMPT)
        self._chat = chat_pb2.ChatRequest(model=model, messages=[message], max_tokens=UNARY_TOKENS)
        self._model = model
        self._message = message

    async def chat(self) -> None:
        """One Chat call."""
        answer = await self._stub.Chat(self._chat, timeout=_CALL_TIMEOUT_S)
        if not answer.content.startswith(TOKENS[0]):
            raise ValueError(f"unexpected answer {answer.content[:40]!r}")

    async def stream(self, tokens: int, progress: Callable[[int], None]) -> int:
        """One StreamChat call."""
        request = chat_pb2.StreamChatRequest(
            model=self._model, messages=[self._message], max_tokens=tokens
        )
        received = 0
        call = self._stub.StreamChat(request, timeout=_CALL_TIMEOUT_S)
        try:
            async for event in call:
                if event.HasField("delta"):
                    count = len(event.delta.content) // TOKEN_LEN
                    received += count
                    progress(count)
        finally:
            call.cancel()
        return received

    async def aclose(self) -> None:
        """Close the channel."""
        await self._channel.close()


class HttpCaller:
    """Calls an OpenAI-compatible /chat/completions endpoint with aiohttp (keep-alive pool)."""

    def __init__(self, base_url: str, model: str, headers: dict[str, str] | None = None) -> None:
        self._url = base_url.rstrip("/") + "/chat/completions"
        self._headers = {"Content-Type": "application/json", **(headers or {})}
        self._model = model
        self._session: aiohttp.ClientSession | None = None
        self._unary = self._body(UNARY_TOKENS, stream=False)

    def _body(self, tokens: int, *, stream: bool) -> bytes:
        body: dict[str, Any] = {
            "model": self._model,
            "messages": [{"role": "user", "content": _PROMPT}],
            "max_tokens": tokens,
        }
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        return orjson.dumps(body)

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=0, force_close=False)
            timeout = aiohttp.ClientTimeout(total=_CALL_TIMEOUT_S)
            self._session = aiohttp.ClientSession(connector=connector, timeout=timeout)
        return self._session

    async def chat(self) -> None:
        """One POST /chat/completions."""
        async with self._http().post(self._url, data=self._unary, headers=self._headers) as r:
            body = await r.read()
        if r.status != 200 or _FIRST_TOKEN not in body:
            raise ValueError(f"HTTP {r.status}: {body[:200]!r}")

    async def stream(self, tokens: int, progress: Callable[[int], None]) -> int:
        """One streamed POST /chat/completions, counting tokens in the raw bytes."""
        body = self._body(tokens, stream=True)
        received = 0
        carry = b""
        async with self._http().post(self._url, data=body, headers=self._headers) as r:
            if r.status != 200:
                raise ValueError(f"HTTP {r.status}: {(await r.read())[:200]!r}")
            async for data in r.content.iter_any():
                # A token may be split across reads: carry the last len-1 bytes (too short to
                # hold a counted token, long enough to hold the start of a split one).
                text = carry + data
                count = len(_TOKEN_RE.findall(text))
                carry = text[1 - TOKEN_LEN :]
                received += count
                if count:
                    progress(count)
        return received

    async def aclose(self) -> None:
        """Close the session."""
        if self._session is not None:
            await self._session.close()


@dataclass
class LatencyResult:
    """Sequential calls at concurrency 1."""

    samples_ms: list[float]
    errors: int

    @property
    def p50_ms(self) -> float:
        """The median latency."""
        return statistics.median(self.samples_ms) if self.samples_ms else float("nan")

    @property
    def p99_ms(self) -> float:
        """The 99th percentile latency."""
        if len(self.samples_ms) < 2:
            return self.p50_ms
        return statistics.quantiles(self.samples_ms, n=100, method="inclusive")[98]


@dataclass
class LoadResult:
    """A closed loop over a fixed time window."""

    seconds: float
    completed: int
    errors: int
    #: Tokens received in the window (streams only).
    tokens: int = 0
    #: CPU used in the window, in percent of one core, by role ("sut", "upstream", "client").
    cpu_percent: dict[str, float] = field(default_factory=dict)
    first_error: str = ""

    @property
    def per_second(self) -> float:
        """Completed calls per second."""
        return self.completed / self.seconds if self.seconds else 0.0

    @property
    def tokens_per_second(self) -> float:
        """Tokens received per second."""
        return self.tokens / self.seconds if self.seconds else 0.0


class CpuMeter(Protocol):
    """Reads cumulative CPU seconds of the processes playing each role."""

    def __call__(self) -> dict[str, float]: ...


def own_cpu_seconds() -> float:
    """CPU seconds used so far by this process (the load generator)."""
    times = os.times()
    return times.user + times.system


async def measure_latency(caller: Caller, *, requests: int, warmup: int) -> LatencyResult:
    """Call ``chat`` one at a time; the first ``warmup`` calls are not recorded."""
    samples: list[float] = []
    errors = 0
    for i in range(warmup + requests):
        start = time.perf_counter()
        try:
            await caller.chat()
        except Exception:
            errors += 1
            continue
        if i >= warmup:
            samples.append((time.perf_counter() - start) * 1000.0)
    return LatencyResult(samples, errors)


async def measure_load(
    caller: Caller,
    *,
    concurrency: int,
    seconds: float,
    warmup_s: float,
    stream_tokens: int = 0,
    cpu: CpuMeter | None = None,
) -> LoadResult:
    """Keep ``concurrency`` calls in flight; count what completes in the measured window.

    One closed loop runs for ``warmup_s`` and then ``seconds``: only the second part is
    measured, so the window sees the steady state (a slow system at high concurrency is not
    measured from a standing start). With ``stream_tokens`` each call is a stream of that many
    tokens and tokens are counted as they arrive. When the window closes no new call starts and
    the calls in flight are awaited, not cancelled, so the next measurement starts on an idle
    system rather than on a backlog of abandoned requests.
    """
    loop = asyncio.get_running_loop()
    result = LoadResult(seconds=seconds, completed=0, errors=0)
    window = {"open": False}
    window_start = loop.time() + warmup_s
    window_end = window_start + seconds

    def progress(count: int) -> None:
        if window["open"]:
            result.tokens += count

    async def call() -> None:
        if stream_tokens:
            got = await caller.stream(stream_tokens, progress)
            if got != stream_tokens:
                raise ValueError(f"stream ended after {got} of {stream_tokens} tokens")
        else:
            await caller.chat()

    async def worker() -> None:
        while loop.time() < window_end:
            try:
                await call()
            except Exception as exc:
                if window["open"]:
                    result.errors += 1
                    if not result.first_error:
                        result.first_error = f"{type(exc).__name__}: {exc}"[:300]
                # A failing system must not turn the loop into a busy spin.
                await asyncio.sleep(0.01)
            else:
                if window["open"]:
                    result.completed += 1

    tasks = [asyncio.create_task(worker()) for _ in range(concurrency)]
    try:
        await asyncio.sleep(max(0.0, window_start - loop.time()))
        before, client_before = (cpu() if cpu else {}), own_cpu_seconds()
        started = time.perf_counter()
        window["open"] = True
        await asyncio.sleep(max(0.0, window_end - loop.time()))
        window["open"] = False
        result.seconds = time.perf_counter() - started
        after, client_after = (cpu() if cpu else {}), own_cpu_seconds()
        await asyncio.wait(tasks, timeout=_DRAIN_TIMEOUT_S)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    spent = {role: after[role] - before.get(role, 0.0) for role in after}
    spent["client"] = client_after - client_before
    result.cpu_percent = {role: 100.0 * used / result.seconds for role, used in spent.items()}
    return result
