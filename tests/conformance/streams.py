"""Helpers: run a chat unary or streamed, and fold a stream back into one answer."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncGenerator, Iterator
from contextlib import aclosing
from typing import Any, Literal

from opentelemetry import context as otel_context
from opentelemetry import propagate

from llm_gateway_server.core.types import (
    ChatAnswer,
    ChatDelta,
    Message,
    ProviderChatRequest,
    Role,
    Tool,
    ToolCall,
    Usage,
)
from llm_gateway_server.providers.base import Provider

Mode = Literal["unary", "stream"]
MODES: tuple[Mode, ...] = ("unary", "stream")
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
WEATHER = Tool(
    name="get_weather",
    description="Current weather in a city.",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}},
)


def chat_request(model: str, *, tools: bool = False, **kwargs: Any) -> ProviderChatRequest:
    """A one-turn request."""
    return ProviderChatRequest(
        model=model,
        messages=(Message(Role.USER, "What is the weather in Paris?"),),
        tools=(WEATHER,) if tools else (),
        **kwargs,
    )


@contextlib.contextmanager
def traced() -> Iterator[None]:
    """Run the block under the trace context of ``TRACEPARENT``, as the router runs calls."""
    token = otel_context.attach(propagate.extract({"traceparent": TRACEPARENT}))
    try:
        yield
    finally:
        otel_context.detach(token)


def open_stream(
    provider: Provider, request: ProviderChatRequest, timeout_s: float = 5.0
) -> AsyncGenerator[ChatDelta]:
    """The provider's stream as the async generator it is (``Provider`` types it loosely)."""
    stream = provider.stream(request, timeout_s=timeout_s)
    assert isinstance(stream, AsyncGenerator), "adapters stream through async generators"
    return stream


async def collect(
    provider: Provider, request: ProviderChatRequest, timeout_s: float = 5.0
) -> list[ChatDelta]:
    """Every delta of a stream, closing it in any case."""
    async with aclosing(open_stream(provider, request, timeout_s)) as stream:
        return [delta async for delta in stream]


def fold(deltas: list[ChatDelta]) -> ChatAnswer:
    """The answer a stream amounts to; asserts the stream's own invariants on the way."""
    assert deltas, "a stream yielded nothing"
    *body, last = deltas
    assert last.finish_reason is not None, "the last delta must carry the finish reason"
    assert all(d.finish_reason is None for d in body), "only the last delta may finish"
    calls: dict[int, list[str]] = {}
    for delta in deltas:
        for fragment in delta.tool_calls:
            id_, name, args = calls.setdefault(fragment.index, ["", "", ""])
            calls[fragment.index] = [
                id_ or fragment.id,
                name + fragment.name,
                args + fragment.arguments,
            ]
    return ChatAnswer(
        content="".join(d.content for d in deltas),
        reasoning_content="".join(d.reasoning_content for d in deltas),
        tool_calls=tuple(ToolCall(*calls[i]) for i in sorted(calls)),
        finish_reason=last.finish_reason,
        usage=last.usage or Usage(),
        model=last.model,
    )


async def run(
    provider: Provider, request: ProviderChatRequest, mode: Mode, timeout_s: float = 5.0
) -> ChatAnswer:
    """A chat through ``chat`` or through ``stream``, as one answer."""
    if mode == "unary":
        return await provider.chat(request, timeout_s=timeout_s)
    return fold(await collect(provider, request, timeout_s))


def arguments(call: ToolCall) -> Any:
    """Tool-call arguments parsed (LiteLLM re-serialises JSON with other spacing)."""
    return json.loads(call.arguments)
