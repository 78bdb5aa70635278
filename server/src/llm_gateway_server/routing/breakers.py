"""One pybreaker circuit breaker per target, bounded to a single half-open probe call.

pybreaker keeps the state machine and its storage (memory, or Redis shared between
workers). Two things are added here:

* Admission is decided before the upstream call, on the router's clock: while open and
  within the reset timeout a call is rejected without touching the upstream; once the
  timeout has passed, exactly one call per process becomes the half-open probe and every
  concurrent call is treated as if the breaker were open. (pybreaker alone lets every
  call through while half-open.)
* Results are recorded through ``with breaker.calling():`` after the awaited call, so no
  await runs under pybreaker's thread lock, and outcomes that say nothing about the
  upstream (the caller cancelled, no concurrency slot) are not recorded at all.

A failure caused by the request is excluded, so pybreaker treats it like a success: the
upstream answered, which resets the failure count and closes a half-open breaker.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pybreaker

from llm_gateway_server.config.providers import BreakerConfig

_log = logging.getLogger(__name__)

#: Builds the state storage of one breaker from its name (``provider/model``).
StorageFactory = Callable[[str], pybreaker.CircuitBreakerStorage]


class BreakerState(enum.StrEnum):
    """A breaker's state, as reported to health and the observer."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


_FROM_PYBREAKER = {
    pybreaker.STATE_CLOSED: BreakerState.CLOSED,
    pybreaker.STATE_OPEN: BreakerState.OPEN,
    pybreaker.STATE_HALF_OPEN: BreakerState.HALF_OPEN,
}


class AttemptFailed(Exception):
    """Carries one attempt's failure through pybreaker without touching the real error."""

    def __init__(self, *, caller_caused: bool) -> None:
        super().__init__("attempt failed")
        self.caller_caused = caller_caused


def _excluded(exc: BaseException) -> bool:
    return isinstance(exc, AttemptFailed) and exc.caller_caused


def memory_storage(name: str) -> pybreaker.CircuitBreakerStorage:
    """The default, per-process breaker storage."""
    return pybreaker.CircuitMemoryStorage(pybreaker.STATE_CLOSED)


@dataclass(frozen=True, slots=True)
class Ticket:
    """Permission for one call; hand it back to ``record`` or ``release``."""

    epoch: int
    probe: bool


#: ``(old, new)`` transition callback.
TransitionHook = Callable[["TargetBreaker", BreakerState, BreakerState], None]


class _Listener(pybreaker.CircuitBreakerListener):
    def __init__(self, owner: TargetBreaker) -> None:
        self._owner = owner

    def state_change(self, cb: Any, old_state: Any, new_state: Any) -> None:
        old = _FROM_PYBREAKER.get(getattr(old_state, "name", ""), BreakerState.CLOSED)
        self._owner._transitioned(old, _FROM_PYBREAKER[new_state.name])


class TargetBreaker:
    """The circuit breaker of one target (provider and model)."""

    def __init__(
        self,
        provider: str,
        model: str,
        config: BreakerConfig,
        *,
        storage: StorageFactory,
        clock: Callable[[], float],
        on_transition: TransitionHook,
    ) -> None:
        """Create a closed breaker (or adopt the state already in ``storage``)."""
        self.provider = provider
        self.model = model
        self.config = config
        self._clock = clock
        self._on_transition = on_transition
        self._epoch = 0
        self._probing = False
        self._pending: list[tuple[BreakerState, BreakerState]] = []
        self._cb = pybreaker.CircuitBreaker(
            fail_max=config.failure_threshold,
            reset_timeout=config.reset_timeout_s,
            exclude=[_excluded],
            listeners=[_Listener(self)],
            state_storage=storage(f"{provider}/{model}"),
            name=f"{provider}/{model}",
            throw_new_error_on_trip=False,
        )
        # Adopted open state (shared storage): count the reset timeout from now.
        self._opened_at: float | None = (
            clock() if self._cb.current_state == pybreaker.STATE_OPEN else None
        )

    @property
    def state(self) -> BreakerState:
        """The current state (reading it notices changes made by other workers)."""
        state = _FROM_PYBREAKER[self._cb.state.name]
        self._flush()
        return state

    @property
    def consecutive_failures(self) -> int:
        """Failures counted since the last success."""
        return int(self._cb.fail_counter)

    def open_remaining_s(self) -> float:
        """Seconds until an open breaker lets a probe through; 0 when not waiting."""
        if self.state is not BreakerState.OPEN or self._opened_at is None:
            return 0.0
        return max(0.0, self._opened_at + self.config.reset_timeout_s - self._clock())

    def usable(self) -> bool:
        """True when a call could be admitted now (ignoring a probe already running)."""
        return self.state is not BreakerState.OPEN or self.open_remaining_s() <= 0

    def admit(self) -> Ticket | None:
        """Admit one call, or return ``None`` when it must be treated as open."""
        state = self.state
        if state is BreakerState.CLOSED:
            return Ticket(self._epoch, probe=False)
        if self._probing:
            return None
        if state is BreakerState.OPEN:
            if self.open_remaining_s() > 0:
                return None
            self._cb.half_open()
            self._flush()
        self._probing = True
        return Ticket(self._epoch, probe=True)

    def record(self, ticket: Ticket, *, ok: bool, caller_caused: bool = False) -> None:
        """Feed one finished call into the breaker.

        A result from before the last transition (a call admitted while closed that ends
        after the breaker opened) is ignored, so stragglers cannot flip the state.
        """
        if ticket.probe:
            self._probing = False
        _ = self.state  # reading it adopts a change another worker stored
        if ticket.epoch != self._epoch:
            return
        failure = None if ok else AttemptFailed(caller_caused=caller_caused)
        try:
            with self._cb.calling():
                if failure is not None:
                    raise failure
        except AttemptFailed as exc:
            if exc is not failure:
                raise
        except pybreaker.CircuitBreakerError:
            pass  # opened by another worker between the read above and now: nothing to add
        self._flush()

    def release(self, ticket: Ticket) -> None:
        """Give a ticket back without a result (cancelled, or never reached upstream)."""
        if ticket.probe:
            self._probing = False

    def _transitioned(self, old: BreakerState, new: BreakerState) -> None:
        # Runs inside pybreaker, before its storage holds the new state: only note it here,
        # and report it from _flush once pybreaker is done.
        self._epoch += 1
        if new is BreakerState.OPEN:
            self._opened_at = self._clock()
        self._pending.append((old, new))

    def _flush(self) -> None:
        while self._pending:
            old, new = self._pending.pop(0)
            self._report(old, new)

    def _report(self, old: BreakerState, new: BreakerState) -> None:
        level = logging.WARNING if new is BreakerState.OPEN else logging.INFO
        _log.log(
            level,
            "circuit breaker %s/%s: %s -> %s (consecutive failures %d)",
            self.provider,
            self.model,
            old.value,
            new.value,
            self.consecutive_failures,
        )
        self._on_transition(self, old, new)
