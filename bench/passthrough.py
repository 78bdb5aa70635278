"""The bare pass-through baseline: gRPC Chat/StreamChat forwarded to one OpenAI-compatible upstream.

Nothing but the forwarding (one shared aiohttp session, orjson), so the gap between it and the
gateway is what routing, limits, breakers and telemetry cost.

    python -m bench.passthrough --listen 127.0.0.1:50051 --upstream http://127.0.0.1:8000/v1
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import grpc
import orjson
import uvloop

from llmgateway.v1 import chat_pb2, common_pb2, gateway_service_pb2_grpc

_ROLES = {1: "system", 2: "user", 3: "assistant", 4: "tool"}
_FINISH = {"stop": chat_pb2.FINISH_REASON_STOP, "length": chat_pb2.FINISH_REASON_LENGTH}


def _body(request: chat_pb2.ChatRequest | chat_pb2.StreamChatRequest, *, stream: bool) -> bytes:
    messages = [
        {"role": _ROLES.get(m.role, "user"), "content": m.content} for m in request.messages
    ]
    body: dict[str, Any] = {"model": request.model, "messages": messages, "stream": stream}
    if request.HasField("max_tokens"):
        body["max_tokens"] = request.max_tokens
    if stream:
        body["stream_options"] = {"include_usage": True}
    return orjson.dumps(body)


class Passthrough(gateway_service_pb2_grpc.GatewayServiceServicer):
    """Chat and StreamChat, forwarded as they are (the other RPCs answer UNIMPLEMENTED)."""

    def __init__(self, upstream: str) -> None:
        self._url = upstream.rstrip("/") + "/chat/completions"
        self._session: aiohttp.ClientSession | None = None

    async def aclose(self) -> None:
        """Close the shared HTTP session."""
        if self._session is not None:
            await self._session.close()

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=0)
            self._session = aiohttp.ClientSession(connector=connector, json_serialize=str)
        return self._session

    async def Chat(
        self, request: chat_pb2.ChatRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> chat_pb2.ChatResponse:
        """Forward one chat; answer with the first choice and the usage."""
        headers = {"Content-Type": "application/json"}
        async with self._http().post(
            self._url, data=_body(request, stream=False), headers=headers
        ) as r:
            answer = orjson.loads(await r.read())
        choice, usage = answer["choices"][0], answer.get("usage") or {}
        return chat_pb2.ChatResponse(
            content=choice["message"].get("content") or "",
            finish_reason=_FINISH.get(choice.get("finish_reason"), chat_pb2.FINISH_REASON_OTHER),
            usage=common_pb2.Usage(**{k: v for k, v in usage.items() if k.endswith("_tokens")}),
            model=answer.get("model", ""),
        )

    async def StreamChat(
        self, request: chat_pb2.StreamChatRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[chat_pb2.StreamChatResponse]:
        """Forward one streamed chat: a delta per content chunk, then a summary."""
        headers = {"Content-Type": "application/json"}
        body = _body(request, stream=True)
        summary = chat_pb2.ChatSummary()
        async with self._http().post(self._url, data=body, headers=headers) as r:
            async for line in r.content:
                if not line.startswith(b"data: ") or line.startswith(b"data: [DONE]"):
                    continue
                chunk = orjson.loads(line[6:])
                if chunk.get("usage"):
                    summary.usage.CopyFrom(common_pb2.Usage(**chunk["usage"]))
                for choice in chunk.get("choices") or ():
                    if text := choice.get("delta", {}).get("content"):
                        yield chat_pb2.StreamChatResponse(delta=chat_pb2.ChatDelta(content=text))
                    if reason := choice.get("finish_reason"):
                        summary.finish_reason = _FINISH.get(reason, chat_pb2.FINISH_REASON_OTHER)
        yield chat_pb2.StreamChatResponse(summary=summary)


async def start_passthrough(listen: str, upstream: str) -> tuple[grpc.aio.Server, int, Passthrough]:
    """Start the baseline on ``listen`` (port 0: a free one): the server, its port, the servicer."""
    server = grpc.aio.server()
    # The generated base class answers UNIMPLEMENTED for the RPCs the baseline leaves out.
    servicer = Passthrough(upstream)  # type: ignore[abstract]
    gateway_service_pb2_grpc.add_GatewayServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port(listen)
    await server.start()
    return server, port, servicer


async def _serve(listen: str, upstream: str) -> None:
    server, _, _ = await start_passthrough(listen, upstream)
    await server.wait_for_termination()


def main(argv: list[str] | None = None) -> None:
    """Run the baseline until terminated."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", required=True, help="HOST:PORT")
    parser.add_argument("--upstream", required=True, help="base URL, e.g. http://127.0.0.1:8000/v1")
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    args = parser.parse_args(argv)
    # uvloop by default: the gateway runs on it too, so the comparison holds the loop constant.
    factory = uvloop.new_event_loop if args.loop == "uvloop" else asyncio.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(_serve(args.listen, args.upstream))


if __name__ == "__main__":
    main()
