"""Fail a test whose event loop was held by one callback for more than ``SLOW_CALLBACK_S``.

A callback (one step of a task) that blocks the loop delays every other call in flight:
that is what a synchronous Redis, DNS or file call on the request path does. asyncio's
debug mode reports slow callbacks by wall time alone, which on a small shared machine also
catches a step that was merely descheduled by the OS. So each callback is timed here with
the thread's CPU time and its voluntary context switches too: a slow callback fails the test
when it spent the time computing (CPU) or waiting in a blocking system call (it gave up the
CPU voluntarily), not when it was preempted. Time in the garbage collector, which runs
wherever an allocation happens to trigger it, is left out too. ``LLMGW_SLOW_CALLBACK_S``
overrides the 50 ms threshold.
"""

from __future__ import annotations

import asyncio
import gc
import os
import resource
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

SLOW_CALLBACK_S = float(os.environ.get("LLMGW_SLOW_CALLBACK_S", "0.05"))
#: A callback that gave up the CPU counts when it held the loop this many thresholds.
_BLOCKED_FACTOR = 4


class LoopWatch:
    """Times every asyncio callback while installed; ``seen`` lists the blocking ones."""

    def __init__(self, threshold_s: float) -> None:
        self.threshold_s = threshold_s
        self.seen: list[str] = []
        self.gc_s = 0.0
        self._gc_started = 0.0

    def on_gc(self, phase: str, info: dict[str, Any]) -> None:
        """``gc.callbacks`` hook: total the collector's time."""
        if phase == "start":
            self._gc_started = time.perf_counter()
        else:
            self.gc_s += time.perf_counter() - self._gc_started

    def wrap(self, run: Callable[[asyncio.Handle], None]) -> Callable[[asyncio.Handle], None]:
        threshold = self.threshold_s
        clock, cpu_clock, usage, who = (
            time.perf_counter,
            time.thread_time,
            resource.getrusage,
            resource.RUSAGE_THREAD,
        )

        def timed_run(handle: asyncio.Handle) -> None:
            started, cpu, waits, collected = clock(), cpu_clock(), usage(who).ru_nvcsw, self.gc_s
            try:
                run(handle)
            finally:
                in_gc = self.gc_s - collected
                wall = clock() - started - in_gc
                if wall >= threshold:
                    spent = cpu_clock() - cpu - in_gc
                    blocked = usage(who).ru_nvcsw - waits
                    # Blocked: a voluntary switch is also a wait for the GIL held by a worker
                    # thread (to_thread, LiteLLM's loggers), which is not the loop's fault;
                    # only a long one (a blocking socket call) counts.
                    if spent >= threshold or (blocked and wall >= _BLOCKED_FACTOR * threshold):
                        self.seen.append(
                            f"{_describe(handle)} held the loop {wall:.3f} s "
                            f"(CPU {spent:.3f} s, blocked {blocked} time(s))"
                        )

        return timed_run


def _describe(handle: asyncio.Handle) -> str:
    # A task's step names the task only: say which coroutine it ran, and where it stopped.
    task = getattr(getattr(handle, "_callback", None), "__self__", None)
    if isinstance(task, asyncio.Task):
        coro = task.get_coro()
        frame = getattr(coro, "cr_frame", None)
        where = f" (now at line {frame.f_lineno})" if frame is not None else ""
        return f"task {task.get_name()!r} running {getattr(coro, '__qualname__', coro)}{where}"
    return repr(handle)


@pytest.fixture
def no_slow_callbacks() -> Iterator[LoopWatch]:
    """Fail the test if a callback blocked the loop (see the module docstring)."""
    watch = LoopWatch(SLOW_CALLBACK_S)
    original: Any = asyncio.Handle._run
    asyncio.Handle._run = watch.wrap(original)  # type: ignore[method-assign]
    gc.callbacks.append(watch.on_gc)
    try:
        yield watch
    finally:
        gc.callbacks.remove(watch.on_gc)
        asyncio.Handle._run = original  # type: ignore[method-assign]
    assert not watch.seen, "the event loop was blocked:\n" + "\n".join(watch.seen)
