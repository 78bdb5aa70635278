"""Circuit-breaker transitions shared between replicas through Redis, off the request path.

Each replica keeps its breakers in process memory (``routing.breakers``); this module only
carries transitions. A local transition is queued (``publish`` never blocks: at most one
pending transition per target, the latest) and a background task writes it to a Redis hash
of the breakers that are not closed and publishes it on a channel; a second task listens on
the channel and hands the peers' transitions to routing. A replica that starts, or
reconnects after an outage, first reads the hash. While Redis is down or slow every replica
runs on its own state: the outage is logged once (``RedisHealth``) and sharing resumes,
with what was queued meanwhile, when Redis answers again.

Redis keys: hash ``<state.key_prefix>breaker:state`` (field ``[provider, model]`` as JSON),
channel ``<state.key_prefix>breaker:events``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
import redis.asyncio
from redis.exceptions import RedisError

from llm_gateway_server.state.redis_health import RedisHealth

logger = logging.getLogger(__name__)

#: ``(provider, model, state, opened_at)``: routing's ``Router.apply_peer_transition``.
ApplyTransition = Callable[[str, str, str, float], None]

#: Entries of the hash older than this are dropped when read (targets long gone).
STALE_S = 24 * 3600.0
#: How long the listener waits for a message before looking again (no traffic).
_LISTEN_S = 1.0
#: Seconds ``aclose`` waits for its tasks to end.
_CLOSE_TIMEOUT_S = 2.0
_CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class _Event:
    provider: str
    model: str
    state: str
    opened_at: float
    at: float


class BreakerSharing:
    """Publishes this replica's breaker transitions and applies the other replicas'."""

    def __init__(
        self, client: redis.asyncio.Redis, health: RedisHealth, *, prefix: str, retry_s: float
    ) -> None:
        """Share through ``client``; ``retry_s`` paces reconnection after a failure."""
        self._client = client
        self._health = health
        self._retry_s = retry_s
        self._key = f"{prefix}breaker:state"
        self._channel = f"{prefix}breaker:events"
        self._origin = uuid.uuid4().hex
        self._pending: dict[tuple[str, str], _Event] = {}
        self._wake = asyncio.Event()
        self._apply: ApplyTransition | None = None
        self._tasks: list[asyncio.Task[None]] = []
        #: True while subscribed to the peers' transitions (after the current state was read).
        self.listening = False

    def publish(self, provider: str, model: str, state: str, opened_at: float) -> None:
        """Queue one local transition (never blocks, never raises)."""
        self._pending[(provider, model)] = _Event(provider, model, state, opened_at, time.time())
        self._wake.set()

    async def start(self, apply: ApplyTransition) -> None:
        """Start publishing and listening; ``apply`` receives the peers' transitions."""
        self._apply = apply
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._publish_loop(), name="llm-gateway breaker publish"),
            loop.create_task(self._listen_loop(), name="llm-gateway breaker listen"),
        ]

    async def aclose(self) -> None:
        """Stop both tasks; no task is left behind."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        if not tasks:
            return
        # Bounded: a Redis client caught mid-reconnect may hold a cancelled task on a socket
        # for a while; shutdown must not wait on it (seen once in the full suite, 300 s).
        _, pending = await asyncio.wait(tasks, timeout=_CLOSE_TIMEOUT_S)
        if pending:
            logger.warning(
                "breaker sharing: %d task(s) still closing after %.0f s",
                len(pending),
                _CLOSE_TIMEOUT_S,
            )

    # -- publishing ---------------------------------------------------------------------

    async def _publish_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch, self._pending = self._pending, {}
            try:
                await self._send(batch)
            except (RedisError, OSError) as exc:
                self._health.failed(exc)
                for key, event in batch.items():
                    self._pending.setdefault(key, event)  # a newer transition wins
                await asyncio.sleep(self._retry_s)
                self._wake.set()
            else:
                self._health.succeeded()

    async def _send(self, batch: dict[tuple[str, str], _Event]) -> None:
        pipe = self._client.pipeline(transaction=False)
        for event in batch.values():
            field = orjson.dumps([event.provider, event.model])
            payload = orjson.dumps(
                {
                    "provider": event.provider,
                    "model": event.model,
                    "state": event.state,
                    "opened_at": event.opened_at,
                    "at": event.at,
                    "origin": self._origin,
                }
            )
            if event.state == _CLOSED:
                pipe.hdel(self._key, field)
            else:
                pipe.hset(self._key, field, payload)
            pipe.publish(self._channel, payload)
        await pipe.execute()

    # -- listening ----------------------------------------------------------------------

    async def _listen_loop(self) -> None:
        while True:
            pubsub = self._client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self._channel)
                # Subscribed first, read second: nothing published in between is missed.
                await self._read_current()
                self._health.succeeded()
                self.listening = True
                while True:
                    message = await pubsub.get_message(timeout=_LISTEN_S)
                    if message is not None:
                        self._received(message.get("data"))
            except (RedisError, OSError) as exc:
                self._health.failed(exc)
            finally:
                self.listening = False
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
            await asyncio.sleep(self._retry_s)

    async def _read_current(self) -> None:
        entries: dict[bytes | str, bytes | str] = await self._client.hgetall(self._key)
        stale = [field for field, raw in entries.items() if not self._received(raw, current=True)]
        if stale:
            await self._client.hdel(self._key, *stale)

    def _received(self, raw: Any, *, current: bool = False) -> bool:
        """Apply one transition; False when it is malformed or (from the hash) stale."""
        try:
            event = orjson.loads(raw)
            provider, model, state = str(event["provider"]), str(event["model"]), event["state"]
            opened_at, at = float(event.get("opened_at", 0.0)), float(event.get("at", 0.0))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            logger.warning("breaker sharing: ignored a malformed transition")
            return False
        if current and at < time.time() - STALE_S:
            return False
        if event.get("origin") != self._origin and self._apply is not None:
            self._apply(provider, model, str(state), opened_at)
        return True
