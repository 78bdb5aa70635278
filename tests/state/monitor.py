"""The commands callers send to a real redis-server, read with MONITOR (scripts' own excluded)."""

from __future__ import annotations

import asyncio
import contextlib
import secrets

import redis.asyncio


class CommandLog:
    """Collects the top-level commands Redis receives between two ``take`` calls."""

    def __init__(self, url: str) -> None:
        self._client = redis.asyncio.Redis.from_url(url)
        self._monitor = self._client.monitor()
        self._seen: list[str] = []
        self._marks: dict[str, asyncio.Event] = {}
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> CommandLog:
        await self._monitor.__aenter__()
        self._task = asyncio.get_running_loop().create_task(self._read())
        await self.take()  # the log starts empty once MONITOR is known to be live
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._monitor.__aexit__()
        await self._client.aclose()

    async def take(self) -> list[str]:
        """The command names seen since the last call (upper case), in order."""
        mark = f"mark-{secrets.token_hex(4)}"
        seen = self._marks[mark] = asyncio.Event()
        await self._client.echo(mark)
        async with asyncio.timeout(10):
            await seen.wait()
        taken, self._seen = self._seen, []
        return taken

    async def _read(self) -> None:
        while True:
            info = await self._monitor.next_command()
            words = str(info["command"]).split()
            if len(words) == 2 and words[0].upper() == "ECHO" and words[1] in self._marks:
                self._marks.pop(words[1]).set()
            elif info["client_type"] != "lua" and words:
                self._seen.append(words[0].upper())
