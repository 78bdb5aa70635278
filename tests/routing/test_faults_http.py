"""The router over real HTTP: OpenAICompatibleProvider against fake upstreams that inject faults.

Each fault is checked for the fallback it causes, the final answer or status, the breaker
transition, and that nothing leaks: no task left (autouse fixture), no connection left
open at either fake once the providers are closed, and aborted requests seen as
disconnects by the fake.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from llm_gateway_server.core.errors import (
    DeadlineExceeded,
    NoTargetLeft,
    StreamInterrupted,
)
from llm_gateway_server.core.types import (
    ANONYMOUS,
    AttemptOutcome,
    ChatDelta,
    EmbedRequest,
    Task,
)
from llm_gateway_server.providers.openai_compatible import OpenAICompatibleProvider
from llm_gateway_server.routing.breakers import BreakerState
from llm_gateway_server.routing.results import StreamSummary
from llm_gateway_server.routing.router import Router
from llm_gateway_server.routing.routes import Resolution
from tests.fakes import Behaviour, FakeOpenAI, Fault
from tests.routing.fakes import (
    RecordingObserver,
    chat_request,
    context,
    local,
    snapshot,
    stream_all,
)

RESET_S = 0.2


@dataclass
class Rig:
    router: Router
    primary: FakeOpenAI
    secondary: FakeOpenAI
    observer: RecordingObserver

    def resolve(self, task: Task | None = None):  # type: ignore[no-untyped-def]
        return self.router.resolve(model="", task=task, privacy=None, principal=ANONYMOUS)

    def breaker(self, provider: str) -> BreakerState:
        return next(
            t
            for t in self.router.health_view().targets
            if t.provider == provider and t.model == "m"
        ).breaker_state


@contextlib.asynccontextmanager
async def rig(
    *,
    timeout_s: float = 5.0,
    retry: dict[str, float] | None = None,
    threshold: int = 1,
) -> AsyncIterator[Rig]:
    async with FakeOpenAI() as primary, FakeOpenAI() as secondary:
        cfg = {
            "timeout_s": timeout_s,
            "connect_timeout_s": 1.0,
            "breaker": {"failure_threshold": threshold, "reset_timeout_s": RESET_S},
            "retry": retry or {"max_attempts": 1, "base_delay_s": 0.0, "max_delay_s": 1.0},
        }
        providers = {
            "primary": local(api_base=primary.base_url, **cfg),
            "secondary": local(api_base=secondary.base_url, **cfg),
        }
        targets = [{"provider": "primary", "model": "m"}, {"provider": "secondary", "model": "m"}]
        routes = {
            "chat": {"targets": targets},
            "embedding": {"task": "embedding", "targets": targets},
        }
        snap = snapshot(providers, routes)
        adapters = {
            name: OpenAICompatibleProvider(name, snap.config.providers[name], api_key=None)
            for name in providers
        }
        observer = RecordingObserver()
        router = Router(snap, adapters, observer=observer, clock=time.monotonic)
        await router.start()
        try:
            yield Rig(router, primary, secondary, observer)
        finally:
            await router.aclose()
            for adapter in adapters.values():
                await adapter.aclose()
            # Nothing left open at the upstreams once the adapters are closed.
            await primary.wait_no_connections(timeout=2.0)
            await secondary.wait_no_connections(timeout=2.0)


async def collect(r: Rig, res: Resolution) -> tuple[list[ChatDelta], StreamSummary]:
    return await stream_all(r.router, res, chat_request(), context(time.monotonic))


FAULTS = {
    "refused": None,  # primary stops listening
    "hang": Behaviour(fault=Fault.HANG),
    "http_500": Behaviour(fault=Fault.HTTP_ERROR, status=500),
    "429_retry_after": Behaviour(fault=Fault.RATE_LIMIT, retry_after="7"),
    "malformed_json": Behaviour(fault=Fault.MALFORMED),
    "slow_first_token": Behaviour(first_token_delay_s=0.6),
    "empty_answer": Behaviour(content=""),
    "dropped": Behaviour(fault=Fault.DROP),
}
OUTCOMES = {
    "refused": AttemptOutcome.UPSTREAM_ERROR,
    "hang": AttemptOutcome.TIMEOUT,
    "http_500": AttemptOutcome.UPSTREAM_ERROR,
    "429_retry_after": AttemptOutcome.RATE_LIMITED,
    "malformed_json": AttemptOutcome.UPSTREAM_ERROR,
    "slow_first_token": AttemptOutcome.TIMEOUT,
    "empty_answer": AttemptOutcome.EMPTY_ANSWER,
    "dropped": AttemptOutcome.UPSTREAM_ERROR,
}


async def inject(r: Rig, fault: str) -> None:
    behaviour = FAULTS[fault]
    if behaviour is None:
        await r.primary.refuse()
    else:
        r.primary.behaviour = behaviour


@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize("mode", ["chat", "stream"])
async def test_fault_falls_back_and_opens_the_breaker(fault: str, mode: str) -> None:
    async with rig(timeout_s=0.3) as r:
        await inject(r, fault)
        res = r.resolve()
        if mode == "chat":
            result = await r.router.chat(res, chat_request(), context(time.monotonic))
            attempts, provider = result.attempts, result.provider
            assert result.answer.content == "Hello from the fake."
        else:
            deltas, summary = await collect(r, res)
            attempts, provider = summary.attempts, summary.provider
            assert "".join(d.content for d in deltas) == "Hello from the fake."
            assert not summary.cut
        assert provider == "secondary"
        assert [a.outcome for a in attempts] == [OUTCOMES[fault], AttemptOutcome.SUCCESS]
        assert r.observer.transitions == [("primary", "m", "closed", "open")]
        assert r.observer.fallbacks == [("chat", "primary", "m")]
        seen = len(r.primary.requests)
        # Open: the next call skips the primary without sending it anything.
        result = await r.router.chat(res, chat_request(), context(time.monotonic))
        assert result.attempts[0].outcome is AttemptOutcome.CIRCUIT_OPEN
        assert len(r.primary.requests) == seen
        if fault in ("hang", "slow_first_token"):
            # The abandoned request was closed: the fake saw its client leave.
            await r.primary.wait_disconnect(timeout=2.0)


async def test_hang_past_the_deadline_is_deadline_exceeded() -> None:
    async with rig(timeout_s=30) as r:
        r.primary.behaviour = Behaviour(fault=Fault.HANG)
        res = r.resolve()
        with pytest.raises(DeadlineExceeded):
            await r.router.chat(res, chat_request(), context(time.monotonic, deadline_s=0.3))
        await r.primary.wait_disconnect(timeout=2.0)
        assert len(r.secondary.requests) == 0
        assert r.primary.open_connections == 0


async def test_short_retry_after_is_honoured_on_the_same_target() -> None:
    retry = {"max_attempts": 2, "base_delay_s": 0.0, "max_delay_s": 1.0}
    async with rig(retry=retry, threshold=2) as r:
        r.primary.script(Behaviour(fault=Fault.RATE_LIMIT, retry_after="0"))
        result = await r.router.chat(r.resolve(), chat_request(), context(time.monotonic))
        assert result.provider == "primary"
        assert result.attempts[0].retries == 1
        assert len(r.primary.requests) == 2
        assert len(r.secondary.requests) == 0


@pytest.mark.parametrize(("cut_after", "falls_back"), [(1, True), (2, False)])
async def test_sse_cut_mid_stream(cut_after: int, falls_back: bool) -> None:
    async with rig() as r:
        r.primary.behaviour = Behaviour(fault=Fault.CUT_STREAM, cut_after=cut_after)
        deltas, summary = await collect(r, r.resolve())
        if falls_back:  # cut before any text: the secondary answers instead
            assert summary.provider == "secondary"
            assert not summary.cut
            assert summary.attempts[0].outcome is AttemptOutcome.UPSTREAM_ERROR
        else:  # cut after "Hello ": the stream ends cut, with STREAM_INTERRUPTED
            assert [d.content for d in deltas] == ["Hello "]
            assert summary.cut
            assert isinstance(summary.error, StreamInterrupted)
            assert [a.outcome for a in summary.attempts] == [AttemptOutcome.STREAM_CUT]
            assert len(r.secondary.requests) == 0
        assert r.breaker("primary") is BreakerState.OPEN


async def test_malformed_chunk_after_text_cuts_the_stream() -> None:
    async with rig() as r:
        r.primary.behaviour = Behaviour(fault=Fault.MALFORMED, reasoning="thinking")
        _, summary = await collect(r, r.resolve())
        # Frame 0 is the role chunk; the garbage comes before frame 1, before any text.
        assert summary.provider == "secondary"
        assert summary.attempts[0].outcome is AttemptOutcome.UPSTREAM_ERROR


async def test_client_cancel_closes_the_upstream_stream() -> None:
    async with rig() as r:
        hold = asyncio.Event()
        r.primary.behaviour = Behaviour(hold=hold)
        stream = await r.router.open_stream(r.resolve(), chat_request(), context(time.monotonic))
        first = await anext(stream)
        assert isinstance(first, ChatDelta) and first.content == "Hello "
        assert r.primary.open_connections == 1
        await stream.aclose()
        await r.primary.wait_disconnect(timeout=2.0)
        await r.primary.wait_no_connections(timeout=2.0)
        assert r.primary.completed_streams == 0
        assert r.observer.attempts[-1][1] is AttemptOutcome.CANCELLED
        view = r.router.health_view()
        assert all(t.in_flight == 0 for t in view.targets)
        assert r.breaker("primary") is BreakerState.CLOSED


async def test_done_when_primary_down_breaker_probe_and_health() -> None:
    """The issue's "Done when", end to end over HTTP."""
    async with rig() as r:
        await r.primary.refuse()
        res = r.resolve()
        # Primary down: Chat succeeds through the fallback; the attempts list both.
        result = await r.router.chat(res, chat_request(), context(time.monotonic))
        assert [(a.provider, a.outcome) for a in result.attempts] == [
            ("primary", AttemptOutcome.UPSTREAM_ERROR),
            ("secondary", AttemptOutcome.SUCCESS),
        ]
        # The breaker opened (threshold 1): later calls skip it without touching it.
        await r.primary.accept()
        for _ in range(3):
            result = await r.router.chat(res, chat_request(), context(time.monotonic))
            assert result.attempts[0].outcome is AttemptOutcome.CIRCUIT_OPEN
        assert len(r.primary.requests) == 0
        health = {t.provider: t for t in r.router.health_view().targets if t.model == "m"}
        assert health["primary"].breaker_state is BreakerState.OPEN
        assert "connect" in health["primary"].last_error
        assert not health["primary"].available
        assert health["secondary"].success_rate == 1.0
        # After the reset timeout one probe goes through and its success closes it.
        await asyncio.sleep(RESET_S + 0.05)
        r.primary.behaviour = Behaviour(first_token_delay_s=0.1)
        calls = [
            asyncio.create_task(r.router.chat(res, chat_request(), context(time.monotonic)))
            for _ in range(4)
        ]
        results = await asyncio.gather(*calls)
        assert len(r.primary.requests) == 1
        assert sorted(x.provider for x in results) == [
            "primary",
            "secondary",
            "secondary",
            "secondary",
        ]
        assert r.breaker("primary") is BreakerState.CLOSED
        assert r.observer.transitions == [
            ("primary", "m", "closed", "open"),
            ("primary", "m", "open", "half_open"),
            ("primary", "m", "half_open", "closed"),
        ]
        view = r.router.health_view()
        assert view.ready
        assert all(route.available for route in view.routes)
        primary = next(p for p in view.providers if p.name == "primary")
        assert primary.probe_ok is None  # probing is off in this rig


async def test_all_down_no_target_left_with_retry_hint() -> None:
    async with rig() as r:
        await r.primary.refuse()
        await r.secondary.refuse()
        with pytest.raises(NoTargetLeft) as info:
            await r.router.embed(
                r.resolve(Task.EMBEDDING), EmbedRequest(inputs=("x",)), context(time.monotonic)
            )
        assert [a.provider for a in info.value.attempts] == ["primary", "secondary"]
        with pytest.raises(NoTargetLeft) as again:
            await r.router.chat(r.resolve(), chat_request(), context(time.monotonic))
        assert {a.outcome for a in again.value.attempts} == {AttemptOutcome.CIRCUIT_OPEN}
        assert again.value.retry_after_s is not None
        assert 0 < again.value.retry_after_s <= RESET_S
        assert not r.router.ready


async def test_active_probes_over_http_feed_health_and_readiness() -> None:
    async with FakeOpenAI(models=("m",)) as up:
        probe = {"enabled": True, "interval_s": 0.05, "timeout_s": 0.5}
        providers = {"ollama": local(api_base=up.base_url, probe=probe)}
        routes = {"chat": {"targets": [{"provider": "ollama", "model": "m"}]}}
        snap = snapshot(providers, routes)
        adapter = OpenAICompatibleProvider("ollama", snap.config.providers["ollama"], api_key=None)
        changes: list[bool] = []
        router = Router(snap, {"ollama": adapter}, on_readiness=changes.append)
        await router.start()
        try:

            async def until(ok: bool) -> None:
                async with asyncio.timeout(3):
                    while router.health_view().providers[0].probe_ok is not ok:
                        await asyncio.sleep(0.01)

            await until(True)
            assert any(req.path == "/v1/models" for req in up.requests)
            up.behaviour = Behaviour(fault=Fault.HTTP_ERROR, status=503)
            await until(False)
            assert "503" in router.health_view().providers[0].probe_error
            assert not router.ready
            up.behaviour = Behaviour()
            await until(True)
            assert router.ready
            assert changes == [True, False, True]
        finally:
            await router.aclose()
            await adapter.aclose()
        await up.wait_no_connections(timeout=2.0)
