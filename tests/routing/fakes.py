"""Fake providers (plain Python objects that record every call) and config helpers."""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from llm_gateway_server.config.loader import ConfigSnapshot, parse_config
from llm_gateway_server.config.model import GatewayConfig
from llm_gateway_server.core.errors import UpstreamError, UpstreamFailure
from llm_gateway_server.core.types import (
    AttemptOutcome,
    AttemptRecord,
    CallContext,
    ChatAnswer,
    ChatDelta,
    ChatRequest,
    EmbedAnswer,
    FinishReason,
    Message,
    ProbeResult,
    ProviderChatRequest,
    ProviderEmbedRequest,
    Role,
    Usage,
)
from llm_gateway_server.routing.observer import AttemptInfo
from llm_gateway_server.routing.results import StreamSummary

#: Behaviours a fake call can have besides raising an ``UpstreamError`` instance.
OK = "ok"
EMPTY = "empty"
HANG = "hang"
CUT = "cut"  # stream: one payload delta, then a failure
CRASH = "crash"  # the adapter raises something that is not an UpstreamError

Behaviour = str | UpstreamError


def fail(failure: UpstreamFailure, retry_after_s: float | None = None) -> UpstreamError:
    """An upstream error of kind ``failure``."""
    return UpstreamError(failure, f"injected {failure.value}", retry_after_s=retry_after_s)


@dataclass
class Call:
    """One recorded call of a fake provider."""

    kind: str
    model: str


class FakeProvider:
    """A provider whose answers follow a script; records every call.

    ``script`` is consumed one behaviour per call (chat, stream or embed); when empty,
    ``default`` applies. ``gate`` (if set) is awaited before answering, so tests can hold
    calls in flight.
    """

    def __init__(
        self,
        name: str,
        script: Iterable[Behaviour] = (),
        *,
        default: Behaviour = OK,
        probe_ok: bool = True,
    ) -> None:
        self.name = name
        self.script: deque[Behaviour] = deque(script)
        self.default = default
        self.calls: list[Call] = []
        self.probe_ok = probe_ok
        self.probes = 0
        self.gate: asyncio.Event | None = None
        self.entered = 0
        self.open_streams = 0
        self.closed = False

    def _next(self, kind: str, model: str) -> Behaviour:
        self.calls.append(Call(kind, model))
        return self.script.popleft() if self.script else self.default

    async def _behave(self, behaviour: Behaviour) -> None:
        self.entered += 1
        if self.gate is not None:
            await self.gate.wait()
        if isinstance(behaviour, UpstreamError):
            raise behaviour
        if behaviour == HANG:
            await asyncio.sleep(3600)
        if behaviour == CRASH:
            raise KeyError("adapter bug")

    async def chat(self, request: ProviderChatRequest, *, timeout_s: float) -> ChatAnswer:
        behaviour = self._next("chat", request.model)
        await self._behave(behaviour)
        if behaviour == EMPTY:
            return ChatAnswer(content="", model=request.model)
        return ChatAnswer(
            content=f"answer from {self.name}/{request.model}",
            model=request.model,
            usage=Usage(prompt_tokens=3, completion_tokens=4),
        )

    async def stream(
        self, request: ProviderChatRequest, *, timeout_s: float
    ) -> AsyncIterator[ChatDelta]:
        behaviour = self._next("stream", request.model)
        self.open_streams += 1
        try:
            await self._behave(behaviour if behaviour != CUT else OK)
            yield ChatDelta(model=request.model)  # role-only first chunk, no payload
            if behaviour == EMPTY:
                yield ChatDelta(finish_reason=FinishReason.STOP)
                return
            yield ChatDelta(content=f"{self.name} ")
            if behaviour == CUT:
                raise fail(UpstreamFailure.BAD_RESPONSE)
            yield ChatDelta(content=request.model)
            yield ChatDelta(finish_reason=FinishReason.STOP, usage=Usage(1, 2))
        finally:
            self.open_streams -= 1

    async def embed(self, request: ProviderEmbedRequest, *, timeout_s: float) -> EmbedAnswer:
        behaviour = self._next("embed", request.model)
        await self._behave(behaviour)
        if behaviour == EMPTY:
            return EmbedAnswer(vectors=())
        return EmbedAnswer(vectors=tuple((1.0, float(i)) for i, _ in enumerate(request.inputs)))

    async def probe(self, *, timeout_s: float) -> ProbeResult:
        self.probes += 1
        return ProbeResult(ok=self.probe_ok, latency_s=0.001, error="" if self.probe_ok else "down")

    async def aclose(self) -> None:
        self.closed = True

    def upstream_calls(self) -> int:
        """Calls that reached this provider (chat, stream, embed)."""
        return len(self.calls)


class FakeClock:
    """A monotonic clock tests move by hand."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class RecordingScope:
    """An attempt scope that remembers how it finished."""

    def __init__(self, info: AttemptInfo, log: list[tuple[AttemptInfo, AttemptOutcome]]) -> None:
        self.info = info
        self._log = log
        self.finished = 0
        self.first_chunks = 0

    def first_chunk(self) -> None:
        self.first_chunks += 1

    def finish(self, outcome: AttemptOutcome, **_: Any) -> None:
        self.finished += 1
        self._log.append((self.info, outcome))


class RecordingObserver:
    """Records attempts, fallbacks and breaker transitions."""

    def __init__(self) -> None:
        self.attempts: list[tuple[AttemptInfo, AttemptOutcome]] = []
        self.scopes: list[RecordingScope] = []
        self.fallbacks: list[tuple[str, str, str]] = []
        self.transitions: list[tuple[str, str, str, str]] = []

    def attempt(self, info: AttemptInfo) -> Any:
        import contextlib

        @contextlib.contextmanager
        def scope() -> Any:
            s = RecordingScope(info, self.attempts)
            self.scopes.append(s)
            yield s

        return scope()

    def fallback(self, route: str, from_provider: str, from_model: str) -> None:
        self.fallbacks.append((route, from_provider, from_model))

    def breaker_transition(self, provider: str, model: str, old: str, new: str) -> None:
        self.transitions.append((provider, model, old, new))


def snapshot(
    providers: Mapping[str, Any],
    routes: Mapping[str, Any],
    *,
    server: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
    generation: int = 1,
) -> ConfigSnapshot:
    """A validated snapshot built from plain dicts (through the real loader).

    Without ``env`` and API-key variables the YAML round trip is skipped (the property
    tests build thousands of snapshots); validation is the same pydantic model.
    """
    raw: dict[str, Any] = {"providers": dict(providers), "routes": dict(routes)}
    if server:
        raw["server"] = server
    if env is None and not any("api_key_env" in p for p in providers.values()):
        return ConfigSnapshot(GatewayConfig.model_validate(raw), "<test>", generation=generation)
    return parse_config(yaml.safe_dump(raw), env=env or {}, generation=generation)


def local(**extra: Any) -> dict[str, Any]:
    """An OpenAI-compatible local provider config (no probing unless asked)."""
    cfg: dict[str, Any] = {
        "kind": "openai_compatible",
        "api_base": "http://127.0.0.1:9/v1",
        "locality": "local",
        "probe": {"enabled": False},
        "retry": {"max_attempts": 1, "base_delay_s": 0.0, "max_delay_s": 0.0},
    }
    cfg.update(extra)
    return cfg


def cloud(**extra: Any) -> dict[str, Any]:
    """An OpenAI-compatible cloud provider config (no key needed)."""
    cfg = local(**extra)
    cfg.setdefault("api_base", "http://127.0.0.1:9/v1")
    cfg["locality"] = extra.get("locality", "cloud")
    return cfg


_ids = itertools.count()


def context(clock: Any, deadline_s: float = 5.0, **kw: Any) -> CallContext:
    """A call context with a deadline ``deadline_s`` from ``clock``'s now."""
    return CallContext(request_id=f"req-{next(_ids)}", deadline=clock() + deadline_s, **kw)


def chat_request(text: str = "hi", **kw: Any) -> ChatRequest:
    """A one-message chat request."""
    return ChatRequest(messages=(Message(role=Role.USER, content=text),), **kw)


@dataclass
class Readiness:
    """Collects readiness callbacks."""

    values: list[bool] = field(default_factory=list)

    def __call__(self, ready: bool) -> None:
        self.values.append(ready)


class RecordingSink:
    """An ``AttemptSink`` that checks every started attempt ends exactly once."""

    def __init__(self) -> None:
        self.started: list[tuple[str, str]] = []
        self.ended: list[AttemptRecord] = []

    def attempt_started(self, provider: str, model: str) -> None:
        assert len(self.started) == len(self.ended), "an attempt started before the last ended"
        self.started.append((provider, model))

    def attempt_ended(self, record: AttemptRecord) -> None:
        assert len(self.ended) < len(self.started), "an attempt ended twice or never started"
        assert (record.provider, record.model) == self.started[len(self.ended)]
        self.ended.append(record)

    @property
    def balanced(self) -> bool:
        """Every started attempt ended."""
        return len(self.started) == len(self.ended)


async def stream_all(
    router: Any, resolution: Any, request: ChatRequest, ctx: CallContext
) -> tuple[list[ChatDelta], StreamSummary]:
    """Open a routed stream, read it to its end, close it; the deltas and the summary."""
    stream = await router.open_stream(resolution, request, ctx)
    try:
        deltas = [delta async for delta in stream]
    finally:
        await stream.aclose()
    assert stream.summary is not None
    assert all(d.has_payload for d in deltas)
    return deltas, stream.summary
