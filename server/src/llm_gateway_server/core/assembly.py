"""Reassembles a streamed answer from its deltas (for the cache, traces, and stream_unary)."""

from __future__ import annotations

from llm_gateway_server.core.types import ChatAnswer, ChatDelta, FinishReason, ToolCall, Usage


class AnswerBuilder:
    """Accumulates deltas; remembers the finish reason, usage and model the last ones carry."""

    def __init__(self) -> None:
        self._content: list[str] = []
        self._reasoning: list[str] = []
        self._arguments: dict[int, list[str]] = {}
        self._heads: dict[int, tuple[str, str]] = {}
        self.finish_reason: FinishReason | None = None
        self.usage: Usage | None = None
        self.model = ""

    def add(self, delta: ChatDelta) -> None:
        """Append one delta."""
        if delta.content:
            self._content.append(delta.content)
        if delta.reasoning_content:
            self._reasoning.append(delta.reasoning_content)
        for call in delta.tool_calls:
            self._arguments.setdefault(call.index, []).append(call.arguments)
            if call.id or call.name:
                old_id, old_name = self._heads.get(call.index, ("", ""))
                self._heads[call.index] = (call.id or old_id, call.name or old_name)
        if delta.finish_reason is not None:
            self.finish_reason = delta.finish_reason
        if delta.usage is not None:
            self.usage = delta.usage
        if delta.model:
            self.model = delta.model

    def answer(
        self,
        finish_reason: FinishReason | None = None,
        usage: Usage | None = None,
        model: str = "",
    ) -> ChatAnswer:
        """The whole answer; arguments override what the deltas carried."""
        calls = tuple(
            ToolCall(*self._heads.get(index, ("", "")), "".join(parts))
            for index, parts in sorted(self._arguments.items())
        )
        return ChatAnswer(
            content="".join(self._content),
            reasoning_content="".join(self._reasoning),
            tool_calls=calls,
            finish_reason=finish_reason or self.finish_reason or FinishReason.STOP,
            usage=usage or self.usage or Usage(),
            model=model or self.model,
        )


def coalesce(deltas: list[ChatDelta]) -> list[ChatDelta]:
    """Merge consecutive payload-only deltas that arrived in one read into one delta.

    Nothing waits for more data: only deltas already in hand are merged, so latency is
    unchanged. When the gateway falls behind, several upstream events arrive per read and
    each then costs one gRPC message instead of several (sending a message is most of the
    CPU a streamed token costs). Deltas carrying a finish reason or usage stay separate.
    """
    if len(deltas) < 2:
        return deltas
    merged: list[ChatDelta] = []
    for delta in deltas:
        last = merged[-1] if merged else None
        if (
            last is not None
            and last.finish_reason is None
            and last.usage is None
            and delta.finish_reason is None
            and delta.usage is None
        ):
            merged[-1] = ChatDelta(
                content=last.content + delta.content,
                reasoning_content=last.reasoning_content + delta.reasoning_content,
                tool_calls=last.tool_calls + delta.tool_calls,
                model=last.model or delta.model,
            )
        else:
            merged.append(delta)
    return merged
