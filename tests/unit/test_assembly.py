"""Deltas that arrived together are merged; finish reason and usage stay on their own."""

from __future__ import annotations

from llm_gateway_server.core.assembly import AnswerBuilder, coalesce
from llm_gateway_server.core.types import ChatDelta, FinishReason, ToolCallDelta, Usage


def test_payload_deltas_of_one_read_merge_and_the_end_stays_separate() -> None:
    deltas = [
        ChatDelta(content="a", model="m"),
        ChatDelta(reasoning_content="r"),
        ChatDelta(tool_calls=(ToolCallDelta(0, "c1", "f", '{"x"'),)),
        ChatDelta(tool_calls=(ToolCallDelta(0, arguments=": 1}"),)),
        ChatDelta(finish_reason=FinishReason.TOOL_CALLS, usage=Usage(3, 4)),
    ]
    merged = coalesce(deltas)
    assert len(merged) == 2
    assert (merged[0].content, merged[0].reasoning_content, merged[0].model) == ("a", "r", "m")
    assert merged[1].finish_reason is FinishReason.TOOL_CALLS
    builder = AnswerBuilder()
    for delta in merged:
        builder.add(delta)
    answer = builder.answer()
    assert [(c.id, c.name, c.arguments) for c in answer.tool_calls] == [("c1", "f", '{"x": 1}')]
    assert answer.usage == Usage(3, 4)


def test_a_single_delta_is_left_alone() -> None:
    one = [ChatDelta(content="x")]
    assert coalesce(one) is one
