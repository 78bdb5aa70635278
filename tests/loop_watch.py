"""Fail a test whose event loop ran one callback longer than ``SLOW_CALLBACK_S``.

asyncio's debug mode logs every callback (one step of a task) that holds the loop longer
than ``loop.slow_callback_duration``: exactly what a blocking call on the event loop does
to every other call in flight. The threshold is generous (250 ms; ``LLMGW_SLOW_CALLBACK_S``
overrides it, e.g. 0.02 on a quiet CI runner) because asyncio measures wall time and the
development machines are small and shared: at 100 ms, tests whose steps are a fraction of
a millisecond failed now and then on a 2-core box at load 5 (the process was descheduled
mid-step), while a gateway that blocks on Redis, DNS, a file or a slow import still fails.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator

import pytest

SLOW_CALLBACK_S = float(os.environ.get("LLMGW_SLOW_CALLBACK_S", "0.25"))


class _SlowCallbacks(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.seen: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("Executing "):
            self.seen.append(message)


@pytest.fixture
async def no_slow_callbacks() -> AsyncIterator[None]:
    """Run the test's loop in debug mode and fail on a callback over the threshold."""
    loop = asyncio.get_running_loop()
    was_debug, was_duration = loop.get_debug(), loop.slow_callback_duration
    loop.set_debug(True)
    loop.slow_callback_duration = SLOW_CALLBACK_S
    handler = _SlowCallbacks()
    asyncio_log = logging.getLogger("asyncio")
    asyncio_log.addHandler(handler)
    try:
        yield
    finally:
        asyncio_log.removeHandler(handler)
        loop.set_debug(was_debug)
        loop.slow_callback_duration = was_duration
    assert not handler.seen, "the event loop was blocked:\n" + "\n".join(handler.seen)
