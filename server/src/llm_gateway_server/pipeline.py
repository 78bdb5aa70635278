"""The call pipeline: what every transport does around every call, in one place.

Request id, deadline, authentication, caller, the call record and how it ends. A transport
(gRPC's servicer today, the HTTP facades tomorrow) uses it like this, and only like this::

    record = pipeline.begin("http", "Chat", metadata_pairs, time_remaining_s)
    try:
        await pipeline.open(record, metadata_pairs)   # drain check, auth, caller
        ...convert the request, call gateway.chat(request, record), send the answer...
    except BaseException as exc:
        await pipeline.close(record, exc)              # settles and logs; never raises
        ...map exc to the transport's status (core.status.code_name), then re-raise
           CancelledError or send the error...
    else:
        await pipeline.close(record, None)

``metadata_pairs`` are lower-case ``(name, value)`` header pairs (gRPC invocation metadata,
or HTTP headers); ``time_remaining_s`` is the caller's deadline if it set one, else ``None``.
``close`` is idempotent: the first call wins. Between ``begin`` and ``close`` the record is
the current one in a contextvar (``telemetry.context``) for log lines and attempt spans.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Protocol

from llm_gateway_server.core.calls import BoundedLabels, CallRecord, caller_header
from llm_gateway_server.core.errors import ShuttingDown
from llm_gateway_server.core.status import outcome
from llm_gateway_server.gateway import Gateway
from llm_gateway_server.telemetry.context import request_id_from

logger = logging.getLogger(__name__)

Metadata = Sequence[tuple[str, str | bytes]]


class CallTelemetry(Protocol):
    """What telemetry does with a record: open its span, and consume it once closed."""

    def opened(self, record: CallRecord, metadata: Metadata) -> None:
        """The call began: continue the caller's trace, make the record current."""

    def closed(self, record: CallRecord) -> None:
        """The call ended: metrics, span end, the log line."""


class CallPipeline:
    """Begins, opens and closes the call records of every transport."""

    def __init__(self, gateway: Gateway, telemetry: CallTelemetry) -> None:
        self._gateway = gateway
        self._telemetry = telemetry
        server = gateway.snapshot.config.server
        # Label sets are per process and bounded; a reload keeps them (series already exist).
        self._callers = BoundedLabels(server.max_caller_labels)
        self._active: set[CallRecord] = set()
        self._settling: set[asyncio.Task[None]] = set()
        self._idle: list[tuple[int, asyncio.Future[None]]] = []
        self._draining = False

    def drain(self) -> None:
        """Refuse new calls (UNAVAILABLE, SHUTTING_DOWN); calls in flight go on."""
        self._draining = True

    def begin(
        self, transport: str, method: str, metadata: Metadata, time_remaining_s: float | None
    ) -> CallRecord:
        """A new record, current from now on; never raises."""
        server = self._gateway.snapshot.config.server
        longest = server.longest_call_s
        remaining = server.default_deadline_s if time_remaining_s is None else time_remaining_s
        record = CallRecord(
            request_id_from(metadata),
            transport,
            method,
            time.monotonic() + min(remaining, longest),
            generation=self._gateway.snapshot.generation,
            task=asyncio.current_task(),
        )
        self._active.add(record)
        self._telemetry.opened(record, metadata)
        return record

    async def open(self, record: CallRecord, metadata: Metadata) -> None:
        """Admit the call: refuse it while draining, authenticate it, name its caller.

        Raises:
            ShuttingDown: the server is draining.
            Unauthenticated: auth is on and the key is missing or unknown.
            RequestInvalid: the caller header is not a plain token.
        """
        if self._draining:
            raise ShuttingDown("the server is shutting down; retry on another replica")
        header = caller_header(tuple(metadata))
        principal = await self._gateway.authenticate(metadata)
        record.principal = principal
        if self._gateway.snapshot.config.auth.enabled:
            # With auth on the key decides who calls; the header is only a sub-label.
            record.caller, record.sub_caller = principal.tenant, header
        elif header:
            record.caller = header
        record.caller_label = self._callers(record.caller)

    async def close(self, record: CallRecord, exc: BaseException | None) -> None:
        """End the call once: settle what it delivered, then log, count and end its span."""
        if record.closed:
            return
        record.closed = True
        record.status, record.error_reason, record.error_message = outcome(
            exc, deadline=record.deadline
        )
        if record.status == "INTERNAL" and exc is not None:
            logger.error("unexpected error in request %s", record.request_id, exc_info=exc)
        record.end_attempts()
        pending, record.pending = record.pending, None
        if pending is None:
            self._finish(record)
            return
        # The settlement runs to its end even if this task is cancelled again meanwhile:
        # what a call delivered is charged however it ended.
        task = asyncio.get_running_loop().create_task(pending.settle(record))
        self._settling.add(task)
        task.add_done_callback(self._settling.discard)
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            # Cancelled again meanwhile: the record is consumed once the settlement ends.
            task.add_done_callback(lambda done: self._settled(done, record))
            return
        except Exception as error:
            logger.error("settling request %s failed", record.request_id, exc_info=error)
        # Here, not in a callback: the request's context is undone where it was entered.
        self._finish(record)

    def _settled(self, task: asyncio.Task[None], record: CallRecord) -> None:
        if not task.cancelled() and (error := task.exception()) is not None:
            logger.error("settling request %s failed", record.request_id, exc_info=error)
        self._finish(record)

    def _finish(self, record: CallRecord) -> None:
        try:
            self._telemetry.closed(record)
        finally:
            self._active.discard(record)
            if self._idle:
                self._wake()

    # -- lifecycle: reloads and shutdown --------------------------------------------------

    def _wake(self) -> None:
        oldest = min((r.generation for r in self._active), default=None)
        waiting = []
        for generation, future in self._idle:
            if oldest is None or oldest > generation:
                if not future.done():
                    future.set_result(None)
            else:
                waiting.append((generation, future))
        self._idle = waiting

    async def idle(self, generation: int | None = None) -> None:
        """Return once no call begun under ``generation`` or before (any call) is running."""
        limit = (
            generation
            if generation is not None
            else max((r.generation for r in self._active), default=0)
        )
        if all(r.generation > limit for r in self._active):
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._idle.append((limit, future))
        await future

    def cut_streams(self) -> int:
        """Shutdown grace is over: end running streams with a cut summary (see the servicer)."""
        cut = 0
        for record in list(self._active):
            task = record.task
            if record.streaming and task is not None and not task.done():
                record.interrupted = True
                # Mid-write, the transport sees the flag once the write returns; cancelling
                # there would land in the framework's code, which then drops the stream.
                if not record.sending:
                    task.cancel("shutdown")
                cut += 1
        return cut

    async def aclose(self) -> None:
        """Wait for settlements still running (they are short: one ledger write each)."""
        if self._settling:
            await asyncio.gather(*self._settling, return_exceptions=True)
