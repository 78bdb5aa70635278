"""One pybreaker circuit breaker per target, on the router's clock, with one half-open probe.

pybreaker keeps the state machine in process memory; nothing here does I/O, so a breaker
costs a call no more than a few attribute reads. Two rules are added to pybreaker's:

* Admission is decided before the upstream call, on the router's (monotonic) clock: while
  open and within the reset timeout a call is refused without touching the upstream; once
  the timeout has passed, exactly one call per process becomes the half-open probe and
  every concurrent call is treated as if the breaker were open. Because the router moves
  an open breaker to half-open itself, pybreaker's own wall-clock check never runs.
* Results are fed to pybreaker after the awaited call (no await under its thread lock),
  as what they are: a success is a call that returns, a failure is a call that raises the
  attempt's real ``UpstreamError``. A failure caused by the request is excluded, so pybreaker
  counts it as a success: the upstream answered. Cancelled calls and calls that never
  reached the upstream are not fed in at all.

Other replicas learn of transitions through ``BreakerPeers`` (the state layer publishes them
asynchronously) and tell this one through ``TargetBreaker.apply``.
"""

from __future__ import annotations

import contextlib
import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn, Protocol

import pybreaker

from llm_gateway_server.config.providers import BreakerConfig
from llm_gateway_server.core.errors import UpstreamError

_log = logging.getLogger(__name__)


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


@dataclass(frozen=True, slots=True)
class Ticket:
    """Permission for one call; hand it back to ``succeeded``, ``failed`` or ``release``."""

    epoch: int
    probe: bool


@dataclass(frozen=True, slots=True)
class Transition:
    """A breaker changed state; ``remote`` when another replica's transition was applied."""

    breaker: TargetBreaker
    old: BreakerState
    new: BreakerState
    remote: bool


TransitionHook = Callable[[Transition], None]


class BreakerPeers(Protocol):
    """Where local transitions go so other replicas apply them (the state layer's sharing)."""

    def publish(self, provider: str, model: str, state: str, opened_at: float) -> None:
        """Queue one transition (a ``BreakerState`` value); ``opened_at`` is wall-clock
        seconds (0 unless open). Never blocks and never raises."""


def _caller_caused(exc: BaseException) -> bool:
    return isinstance(exc, UpstreamError) and exc.caller_caused


def _answered() -> None:
    return None


def _raise(error: UpstreamError) -> NoReturn:
    raise error


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
        clock: Callable[[], float],
        on_transition: TransitionHook,
    ) -> None:
        """Create a closed breaker."""
        self.provider = provider
        self.model = model
        self.config = config
        self._clock = clock
        self._on_transition = on_transition
        self._epoch = 0
        self._probing = False
        #: A peer's probe runs until then (router clock); this replica does not probe.
        self._peer_probe_until = 0.0
        #: When the breaker last opened, on the router's clock.
        self.opened_at: float | None = None
        self._remote = False
        self._pending: list[Transition] = []
        self._cb = pybreaker.CircuitBreaker(
            fail_max=config.failure_threshold,
            reset_timeout=config.reset_timeout_s,
            exclude=[_caller_caused],
            listeners=[_Listener(self)],
            name=f"{provider}/{model}",
            throw_new_error_on_trip=False,
        )

    @property
    def state(self) -> BreakerState:
        """The current state."""
        return _FROM_PYBREAKER[self._cb.current_state]

    @property
    def consecutive_failures(self) -> int:
        """Failures counted since the last success."""
        return int(self._cb.fail_counter)

    def open_remaining_s(self) -> float:
        """Seconds until an open breaker lets a probe through; 0 when not waiting."""
        if self.opened_at is None or self.state is not BreakerState.OPEN:
            return 0.0
        return max(0.0, self.opened_at + self.config.reset_timeout_s - self._clock())

    def usable(self) -> bool:
        """True when a call could be admitted now (ignoring a probe already running)."""
        return self.state is not BreakerState.OPEN or self.open_remaining_s() <= 0

    def admit(self) -> Ticket | None:
        """Admit one call, or return ``None`` when it must be treated as open."""
        state = self.state
        if state is BreakerState.CLOSED:
            return Ticket(self._epoch, probe=False)
        if self._probing or self._clock() < self._peer_probe_until:
            return None
        if state is BreakerState.OPEN:
            if self.open_remaining_s() > 0:
                return None
            self._cb.half_open()
            self._flush()
        self._probing = True
        return Ticket(self._epoch, probe=True)

    def succeeded(self, ticket: Ticket) -> None:
        """The upstream answered."""
        if not self._current(ticket):
            return
        if not ticket.probe and self._cb.fail_counter == 0:
            # Closed with no failure counted: pybreaker would only reset a counter already
            # at zero. Skipping its locked call saves 1.2 us per answer (cb.call 1.4 us vs
            # the counter read 0.2 us, timeit on the dev box).
            return
        self._cb.call(_answered)
        self._flush()

    def failed(self, ticket: Ticket, error: UpstreamError) -> None:
        """The upstream failed with ``error`` (caller-caused errors count as answers)."""
        if not self._current(ticket):
            return
        # pybreaker hands back what the call raised: ours, already handled.
        with contextlib.suppress(UpstreamError):
            self._cb.call(_raise, error)
        self._flush()

    def release(self, ticket: Ticket) -> None:
        """Give a ticket back without a result (cancelled, or never reached upstream)."""
        if ticket.probe:
            self._probing = False

    def _current(self, ticket: Ticket) -> bool:
        # A result from before the last transition (a call admitted while closed that ends
        # after the breaker opened, here or at a peer) is dropped: stragglers cannot flip it.
        if ticket.probe:
            self._probing = False
        return ticket.epoch == self._epoch

    def apply(self, new: BreakerState, *, opened_ago_s: float = 0.0) -> None:
        """Adopt a peer replica's transition (``opened_ago_s``: how long ago it opened)."""
        now = self._clock()
        if new is BreakerState.OPEN:
            opened = now - max(0.0, opened_ago_s)
            if self.state is BreakerState.OPEN:
                # Both opened it: the later opening counts, as each would have waited.
                self.opened_at = max(self.opened_at or opened, opened)
                return
        self._remote = True
        try:
            if new is BreakerState.OPEN:
                self._cb.open()
                self.opened_at = opened
            elif new is BreakerState.HALF_OPEN:
                # The peer probes; this replica waits for its verdict, at most one timeout.
                self._peer_probe_until = now + self.config.reset_timeout_s
                if self.state is not BreakerState.HALF_OPEN:
                    self._cb.half_open()
            elif self.state is not BreakerState.CLOSED:
                self._peer_probe_until = 0.0
                self._cb.close()
        finally:
            self._remote = False
        self._flush()

    def _transitioned(self, old: BreakerState, new: BreakerState) -> None:
        # Runs inside pybreaker, before its storage holds the new state: only note it here,
        # and report it from _flush once pybreaker is done.
        self._epoch += 1
        if new is BreakerState.OPEN:
            self.opened_at = self._clock()
        self._pending.append(Transition(self, old, new, self._remote))

    def _flush(self) -> None:
        while self._pending:
            transition = self._pending.pop(0)
            level = logging.WARNING if transition.new is BreakerState.OPEN else logging.INFO
            _log.log(
                level,
                "circuit breaker %s/%s: %s -> %s (%s)",
                self.provider,
                self.model,
                transition.old.value,
                transition.new.value,
                "from a peer replica"
                if transition.remote
                else f"consecutive failures {self.consecutive_failures}",
            )
            self._on_transition(transition)
