"""Requests and answer helpers shared by the state tests."""

from __future__ import annotations

from llm_gateway_server.core.types import (
    CacheControl,
    CacheMode,
    ChatAnswer,
    ChatRequest,
    Message,
    Role,
    Sampling,
    Usage,
)
from llm_gateway_server.state import Admission, RequestPolicy


def chat(
    text: str = "hi",
    *,
    temperature: float | None = 0.0,
    max_tokens: int | None = 10,
    mode: CacheMode = CacheMode.DEFAULT,
    ttl_s: float | None = None,
) -> ChatRequest:
    """A one-message chat request (temperature 0 and 10 tokens at most by default)."""
    return ChatRequest(
        messages=(Message(Role.USER, text),),
        sampling=Sampling(temperature=temperature, max_tokens=max_tokens),
        cache=CacheControl(mode, ttl_s),
    )


async def answer(
    policy: RequestPolicy,
    admission: Admission,
    *,
    text: str = "hello",
    usage: Usage | None = None,
    cost_usd: float | None = 0.0,
    fallbacks: int = 0,
    provider: str = "local",
    model: str = "x",
) -> ChatAnswer:
    """Complete ``admission`` as if ``provider`` had answered ``text``."""
    usage = usage or Usage(2, 3)
    reply = ChatAnswer(text, usage=usage, model=model)
    await policy.complete(
        admission,
        answer_usage=usage,
        cost_usd=cost_usd,
        provider=provider,
        model=model,
        fallbacks=fallbacks,
        answer=reply,
        ttl_s=None,
    )
    return reply
