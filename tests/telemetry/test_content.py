"""Prompt and answer text stay out of spans and logs unless record_content is on."""

from __future__ import annotations

import json

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from llm_gateway_server.core.types import (
    AttemptOutcome,
    ChatAnswer,
    FinishReason,
    ImagePart,
    Message,
    Privacy,
    Role,
    TextPart,
    ToolCall,
    Usage,
)
from tests.telemetry.records import start as start_call

from .conftest import LogCapture, MakeTelemetry, attempt_info

PROMPT = "my secret plan is to visit Lyon"
ANSWER = "Lyon is lovely in spring"
MESSAGES = (
    Message(role=Role.SYSTEM, content="be brief"),
    Message(
        role=Role.USER,
        parts=(TextPart(PROMPT), ImagePart(data=b"\x89PNG....", mime_type="image/png")),
    ),
    Message(
        role=Role.ASSISTANT,
        tool_calls=(ToolCall(id="call_1", name="lookup", arguments='{"q": "Lyon"}'),),
    ),
    Message(role=Role.TOOL, tool_call_id="call_1", content="Lyon: 522k people"),
)


def run_chat(make_telemetry: MakeTelemetry, exporter: InMemorySpanExporter, record: bool) -> None:
    telemetry = make_telemetry(exporter=exporter, record_content=record)
    with start_call(telemetry, "Chat", []) as scope:
        assert scope.records_content is record
        scope.set_request(
            route="chat", privacy=Privacy.FLEXIBLE, model_requested="chat", messages=MESSAGES
        )
        with telemetry.observer.attempt(attempt_info("alpha", "model-a", 1)) as attempt:
            attempt.finish(AttemptOutcome.SUCCESS, usage=Usage(5, 6), response_model="model-a")
        answer = ChatAnswer(content=ANSWER, finish_reason=FinishReason.STOP, model="model-a")
        scope.set_result(
            provider="alpha",
            model="model-a",
            usage=answer.usage,
            cost_usd=None,
            finish_reason=answer.finish_reason,
            attempts=1,
            fallbacks=0,
            cached=False,
            answer=answer,
        )


def all_attribute_text(exporter: InMemorySpanExporter) -> str:
    return " ".join(
        str(value)
        for span in exporter.get_finished_spans()
        for value in (span.attributes or {}).values()
    )


async def test_no_prompt_or_answer_text_is_recorded_by_default(
    make_telemetry: MakeTelemetry, exporter: InMemorySpanExporter, logs: LogCapture
) -> None:
    run_chat(make_telemetry, exporter, record=False)
    assert len(exporter.get_finished_spans()) == 2
    text = all_attribute_text(exporter) + "\n".join(logs.lines())
    assert PROMPT not in text and ANSWER not in text and "be brief" not in text
    for span in exporter.get_finished_spans():
        assert "gen_ai.input.messages" not in (span.attributes or {})
        assert "gen_ai.output.messages" not in (span.attributes or {})


async def test_record_content_puts_messages_on_the_spans(
    make_telemetry: MakeTelemetry, exporter: InMemorySpanExporter, logs: LogCapture
) -> None:
    run_chat(make_telemetry, exporter, record=True)
    spans = {s.kind: s for s in exporter.get_finished_spans()}
    server, attempt = spans[SpanKind.SERVER], spans[SpanKind.CLIENT]
    assert server.attributes is not None and attempt.attributes is not None
    sent = json.loads(str(server.attributes["gen_ai.input.messages"]))
    assert attempt.attributes["gen_ai.input.messages"] == server.attributes["gen_ai.input.messages"]
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "tool"]
    assert sent[1]["parts"][0] == {"type": "text", "content": PROMPT}
    # Image bytes never go into a span: only their type and size.
    assert sent[1]["parts"][1] == {
        "type": "blob",
        "modality": "image",
        "mime_type": "image/png",
        "size": 8,
    }
    assert sent[2]["parts"] == [
        {"type": "tool_call", "id": "call_1", "name": "lookup", "arguments": '{"q": "Lyon"}'}
    ]
    assert sent[3]["parts"][0]["type"] == "tool_call_response"
    answered = json.loads(str(server.attributes["gen_ai.output.messages"]))
    assert answered == [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": ANSWER}],
            "finish_reason": "stop",
        }
    ]
    # Logs never carry content, whatever the setting.
    assert PROMPT not in "\n".join(logs.lines())


@pytest.mark.parametrize("record", [False, True])
async def test_without_tracing_content_is_never_kept(
    make_telemetry: MakeTelemetry, record: bool
) -> None:
    telemetry = make_telemetry(record_content=record)
    with start_call(telemetry, "Embed", []) as scope:
        assert not scope.records_content
        scope.set_request(
            route="embed", privacy=Privacy.STRICT, model_requested="embed", inputs=(PROMPT,)
        )
        assert scope.request is not None and scope.request.input_messages is None
