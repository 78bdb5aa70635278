"""A TCP proxy on loopback that delays every chunk by a fixed time (a Redis "far away")."""

from __future__ import annotations

import asyncio
import contextlib


class DelayProxy:
    """Forwards ``127.0.0.1:<port>`` to ``target`` with ``delay_s`` added in each direction."""

    def __init__(self, target_host: str, target_port: int, delay_s: float) -> None:
        self._target = (target_host, target_port)
        self.delay_s = delay_s
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        #: Chunks read but not yet delivered, both directions.
        self.in_transit = 0
        self.port = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def __aenter__(self) -> DelayProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await task
        await self._server.wait_closed()

    def _spawn(self, coro: object) -> None:
        task = asyncio.get_running_loop().create_task(coro)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self._target)
        self._spawn(self._pump(reader, up_writer))
        self._spawn(self._pump(up_reader, writer))

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            try:
                while True:
                    due, chunk = await queue.get()
                    await asyncio.sleep(max(0.0, due - loop.time()))
                    if not chunk:  # the other side closed: close this one, in order
                        return
                    writer.write(chunk)
                    self.in_transit -= 1
                    await writer.drain()
            finally:
                writer.close()

        self._spawn(deliver())
        while chunk := await reader.read(65536):
            self.in_transit += 1
            queue.put_nowait((loop.time() + self.delay_s, chunk))
        queue.put_nowait((loop.time() + self.delay_s, b""))
