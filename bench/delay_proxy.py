"""A TCP proxy that adds a fixed delay each way: `make bench`'s "Redis 20 ms away".

python -m bench.delay_proxy --listen-port 7001 --target-port 6379 --delay-ms 20
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay_s: float) -> None:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def deliver() -> None:
        try:
            while True:
                due, chunk = await queue.get()
                await asyncio.sleep(max(0.0, due - loop.time()))
                if not chunk:
                    return
                writer.write(chunk)
                await writer.drain()
        finally:
            writer.close()

    # Chunks keep their order and each arrives delay_s after it was read: a link with that
    # latency (and no bandwidth limit), not a stall of the whole connection.
    delivery = loop.create_task(deliver())
    with contextlib.suppress(OSError):
        while chunk := await reader.read(65536):
            queue.put_nowait((loop.time() + delay_s, chunk))
    queue.put_nowait((loop.time() + delay_s, b""))
    await delivery


async def serve(listen_port: int, target_port: int, delay_s: float) -> None:
    """Forward 127.0.0.1:listen_port to 127.0.0.1:target_port until cancelled."""

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", target_port)
        await asyncio.gather(_pump(reader, up_writer, delay_s), _pump(up_reader, writer, delay_s))

    server = await asyncio.start_server(accept, "127.0.0.1", listen_port)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--listen-port", type=int, required=True)
    parser.add_argument("--target-port", type=int, required=True)
    parser.add_argument("--delay-ms", type=float, default=20.0)
    args = parser.parse_args(argv)
    asyncio.run(serve(args.listen_port, args.target_port, args.delay_ms / 1000.0))


if __name__ == "__main__":
    main()
