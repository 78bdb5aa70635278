"""Circuit-breaker state shared through Redis (pybreaker's ``CircuitRedisStorage``), falling
back to local memory while Redis is unreachable.

pybreaker is synchronous, so its storage talks to Redis with the blocking client; the
short socket timeouts of ``state.redis_timeout_s`` and the shared ``RedisHealth`` (which
skips Redis for ``state.redis_retry_s`` after a failure) bound what an outage costs the
event loop. Every write also goes to the local copy, so a fall-back starts from the state
this replica last saw rather than from scratch.

Redis keys: ``<state.key_prefix>breaker:<name>:pybreaker:{state,fail_counter,
success_counter,opened_at}``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar, cast

import pybreaker
import redis
from redis.exceptions import RedisError

from llm_gateway_server.state.redis_health import RedisHealth

T = TypeVar("T")

# CircuitRedisStorage logs every Redis error with a traceback; RedisHealth logs the
# outage once instead.
_quiet = logging.getLogger(f"{__name__}.pybreaker")
_quiet.addHandler(logging.NullHandler())
_quiet.setLevel(logging.CRITICAL + 1)
_quiet.propagate = False


class _TrackingClient:
    """The subset of ``redis.Redis`` that ``CircuitRedisStorage`` uses, remembering the
    last error so the caller can tell that a (swallowed) Redis call failed."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self.error: BaseException | None = None

    def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return getattr(self._client, name)(*args, **kwargs)
        except (RedisError, OSError) as exc:
            self.error = exc
            raise RedisError(type(exc).__name__) from exc

    def get(self, *args: Any, **kwargs: Any) -> Any:
        return self._call("get", *args, **kwargs)

    def set(self, *args: Any, **kwargs: Any) -> Any:
        return self._call("set", *args, **kwargs)

    def setnx(self, *args: Any, **kwargs: Any) -> Any:
        return self._call("setnx", *args, **kwargs)

    def incr(self, *args: Any, **kwargs: Any) -> Any:
        return self._call("incr", *args, **kwargs)

    def transaction(self, *args: Any, **kwargs: Any) -> Any:
        return self._call("transaction", *args, **kwargs)


class FallbackCircuitStorage(pybreaker.CircuitBreakerStorage):
    """Redis-backed breaker state that degrades to local memory while Redis is down."""

    def __init__(
        self, name: str, *, client: redis.Redis, health: RedisHealth, namespace: str
    ) -> None:
        super().__init__(name)
        self._tracking = _TrackingClient(client)
        self._health = health
        self._namespace = namespace
        self._local = pybreaker.CircuitMemoryStorage(pybreaker.STATE_CLOSED)
        self._remote: pybreaker.CircuitRedisStorage | None = None

    def _with_remote(self, operation: Callable[[pybreaker.CircuitBreakerStorage], T]) -> T | None:
        """Run ``operation`` on Redis; ``None`` when Redis is (or just went) down."""
        if not self._health.usable():
            return None
        self._tracking.error = None
        try:
            if self._remote is None:
                remote = pybreaker.CircuitRedisStorage(
                    pybreaker.STATE_CLOSED,
                    cast("redis.Redis", self._tracking),
                    namespace=self._namespace,
                )
                remote.logger = _quiet
                self._remote = remote
            result = operation(self._remote)
        except RedisError as exc:
            self._health.failed(self._tracking.error or exc)
            return None
        if self._tracking.error is not None:
            self._health.failed(self._tracking.error)
            return None
        self._health.succeeded()
        return result

    def _read(self, operation: Callable[[pybreaker.CircuitBreakerStorage], T]) -> T:
        remote = self._with_remote(operation)
        return remote if remote is not None else operation(self._local)

    def _write(self, operation: Callable[[pybreaker.CircuitBreakerStorage], None]) -> None:
        operation(self._local)
        self._with_remote(operation)

    @property
    def state(self) -> str:
        """The breaker state, from Redis when reachable (mirrored locally)."""
        value: str = self._read(lambda s: s.state)
        if self._local.state != value:
            self._local.state = value
        return value

    @state.setter
    def state(self, state: str) -> None:
        def assign(storage: pybreaker.CircuitBreakerStorage) -> None:
            storage.state = state

        self._write(assign)

    def increment_counter(self) -> None:
        """One more consecutive failure."""
        self._write(lambda s: s.increment_counter())

    def reset_counter(self) -> None:
        """Failures back to zero."""
        self._write(lambda s: s.reset_counter())

    def increment_success_counter(self) -> None:
        """One more success while half-open."""
        self._write(lambda s: s.increment_success_counter())

    def reset_success_counter(self) -> None:
        """Half-open successes back to zero."""
        self._write(lambda s: s.reset_success_counter())

    @property
    def counter(self) -> int:
        """Consecutive failures."""
        value: int = self._read(lambda s: s.counter)
        return value

    @property
    def success_counter(self) -> int:
        """Consecutive successes while half-open."""
        value: int = self._read(lambda s: s.success_counter)
        return value

    @property
    def opened_at(self) -> datetime | None:
        """When the breaker last opened."""
        remote = self._with_remote(lambda s: (s.opened_at,))
        if remote is None:
            local: datetime | None = self._local.opened_at
            return local
        if remote[0] is not None:
            self._local.opened_at = remote[0]
        return remote[0]

    @opened_at.setter
    def opened_at(self, now: datetime) -> None:
        def assign(storage: pybreaker.CircuitBreakerStorage) -> None:
            storage.opened_at = now

        self._write(assign)
