"""The OpenAI chat-completions wire format: request bodies, answers and stream chunks.

One mapping shared by the native adapter (which parses upstream JSON) and the LiteLLM adapter
(whose responses are the same shape once dumped to dicts), so both produce identical answers.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

import orjson

from llm_gateway_server.core.errors import UpstreamError, UpstreamFailure
from llm_gateway_server.core.types import (
    ChatAnswer,
    ChatDelta,
    EmbedAnswer,
    FinishReason,
    ImagePart,
    Message,
    ProviderChatRequest,
    ProviderEmbedRequest,
    ResponseFormat,
    ResponseFormatType,
    Sampling,
    TextPart,
    Tool,
    ToolCall,
    ToolCallDelta,
    ToolChoice,
    Usage,
)

#: Field names under which servers put reasoning text, most common first.
REASONING_FIELDS = ("reasoning_content", "reasoning", "thinking")

_FINISH = {
    "stop": FinishReason.STOP,
    "end_turn": FinishReason.STOP,
    "stop_sequence": FinishReason.STOP,
    "length": FinishReason.LENGTH,
    "max_tokens": FinishReason.LENGTH,
    "tool_calls": FinishReason.TOOL_CALLS,
    "function_call": FinishReason.TOOL_CALLS,
    "tool_use": FinishReason.TOOL_CALLS,
    "content_filter": FinishReason.CONTENT_FILTER,
}


# ---------------------------------------------------------------- requests


def build_chat_body(
    request: ProviderChatRequest, *, stream: bool, max_tokens_field: str = "max_tokens"
) -> dict[str, Any]:
    """The chat-completions body for ``request``; unset sampling fields are left out.

    Args:
        request: What the router asks of this provider.
        stream: Ask for SSE, with a usage chunk at the end.
        max_tokens_field: ``max_completion_tokens`` for api.openai.com (its reasoning models
            refuse ``max_tokens``), ``max_tokens`` for everything else.
    """
    body: dict[str, Any] = {
        "model": request.model,
        "messages": [_message(m) for m in request.messages],
    }
    if request.tools:
        body["tools"] = [{"type": "function", "function": _function(t)} for t in request.tools]
    if request.tool_choice is not None:
        choice = _tool_choice(request.tool_choice)
        if choice is not None:
            body["tool_choice"] = choice
    if request.response_format is not None:
        response_format = _response_format(request.response_format)
        if response_format is not None:
            body["response_format"] = response_format
    _add_sampling(body, request.sampling, max_tokens_field)
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body


def build_embed_body(request: ProviderEmbedRequest) -> dict[str, Any]:
    """The /embeddings body for ``request``."""
    body: dict[str, Any] = {"model": request.model, "input": list(request.inputs)}
    if request.dimensions is not None:
        body["dimensions"] = request.dimensions
    return body


def _message(message: Message) -> dict[str, Any]:
    out: dict[str, Any] = {"role": message.role.value}
    if message.parts:
        out["content"] = [_part(p) for p in message.parts]
    elif message.tool_calls and not message.content:
        out["content"] = None
    else:
        out["content"] = message.content
    if message.name:
        out["name"] = message.name
    if message.tool_call_id:
        out["tool_call_id"] = message.tool_call_id
    if message.tool_calls:
        out["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in message.tool_calls
        ]
    return out


def _part(part: TextPart | ImagePart) -> dict[str, Any]:
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text}
    if part.url:
        url = part.url
    else:
        encoded = base64.b64encode(part.data or b"").decode("ascii")
        url = f"data:{part.mime_type or 'image/png'};base64,{encoded}"
    return {"type": "image_url", "image_url": {"url": url}}


def _function(tool: Tool) -> dict[str, Any]:
    parameters = tool.parameters
    if parameters is None:
        parameters = {"type": "object", "properties": {}}
    function: dict[str, Any] = {"name": tool.name, "parameters": parameters}
    if tool.description:
        function["description"] = tool.description
    if tool.strict:
        function["strict"] = True
    return function


def _tool_choice(choice: ToolChoice) -> str | dict[str, Any] | None:
    if choice.function_name:
        return {"type": "function", "function": {"name": choice.function_name}}
    return choice.mode or None


def _response_format(fmt: ResponseFormat) -> dict[str, Any] | None:
    if fmt.type is ResponseFormatType.JSON_OBJECT:
        return {"type": "json_object"}
    if fmt.type is ResponseFormatType.JSON_SCHEMA:
        schema: dict[str, Any] = {
            "name": fmt.schema_name or "response",
            "schema": fmt.json_schema or {"type": "object"},
        }
        if fmt.strict:
            schema["strict"] = True
        return {"type": "json_schema", "json_schema": schema}
    return None


def _add_sampling(body: dict[str, Any], sampling: Sampling, max_tokens_field: str) -> None:
    values: dict[str, Any] = {
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
        max_tokens_field: sampling.max_tokens,
        "seed": sampling.seed,
        "presence_penalty": sampling.presence_penalty,
        "frequency_penalty": sampling.frequency_penalty,
        "reasoning_effort": sampling.reasoning_effort.value if sampling.reasoning_effort else None,
    }
    body.update((k, v) for k, v in values.items() if v is not None)
    if sampling.stop:
        body["stop"] = list(sampling.stop)


# ---------------------------------------------------------------- answers


def map_finish_reason(value: object) -> FinishReason:
    """The gateway's finish reason for an upstream's string (unknown ones become OTHER)."""
    if not isinstance(value, str):
        return FinishReason.OTHER
    return _FINISH.get(value.lower(), FinishReason.OTHER)


def parse_usage(data: object) -> Usage:
    """Usage from an OpenAI ``usage`` object, including reasoning and cached token details."""
    if not isinstance(data, Mapping):
        return Usage()
    completion_details = data.get("completion_tokens_details")
    prompt_details = data.get("prompt_tokens_details")
    return Usage(
        prompt_tokens=_int(data.get("prompt_tokens")),
        completion_tokens=_int(data.get("completion_tokens")),
        reasoning_tokens=_int(_get(completion_details, "reasoning_tokens")),
        cached_tokens=_int(_get(prompt_details, "cached_tokens")),
    )


def reasoning_of(message: Mapping[str, Any]) -> str:
    """The reasoning text of a message or delta, under whichever name the server used."""
    for field in REASONING_FIELDS:
        value = message.get(field)
        if isinstance(value, str) and value:
            return value
    return ""


def parse_chat_answer(data: object) -> ChatAnswer:
    """A ChatAnswer from a chat-completions response.

    Raises:
        UpstreamError: BAD_RESPONSE when the shape is wrong, EMPTY_ANSWER when the model
            produced nothing, CONTENT_FILTER when a filter removed everything.
    """
    if not isinstance(data, Mapping):
        raise _bad("the answer is not a JSON object")
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], Mapping):
        raise _bad("the answer has no choices")
    message = choices[0].get("message")
    if not isinstance(message, Mapping):
        raise _bad("the answer's choice has no message")
    calls = tuple(
        ToolCall(
            id=str(raw.get("id") or f"call_{i}"),
            name=str(_get(raw.get("function"), "name") or ""),
            arguments=_arguments(_get(raw.get("function"), "arguments")),
        )
        for i, raw in enumerate(message.get("tool_calls") or ())
        if isinstance(raw, Mapping)
    )
    content = _text(message.get("content"))
    reasoning = reasoning_of(message)
    finish = final_reason(
        map_finish_reason(choices[0].get("finish_reason")), bool(content), bool(reasoning), calls
    )
    return ChatAnswer(
        content=content,
        reasoning_content=reasoning,
        tool_calls=calls,
        finish_reason=finish,
        usage=parse_usage(data.get("usage")),
        model=str(data.get("model") or ""),
    )


def final_reason(
    finish: FinishReason, has_content: bool, has_reasoning: bool, has_calls: object
) -> FinishReason:
    """The answer's finish reason, or the error for an answer with nothing in it.

    Raises:
        UpstreamError: EMPTY_ANSWER (or CONTENT_FILTER) when there is no text, reasoning or
            tool call.
    """
    if has_content or has_calls:
        # Some servers say "stop" after tool calls; the caller needs to know to run them.
        if has_calls and finish is FinishReason.STOP:
            return FinishReason.TOOL_CALLS
        return finish
    if has_reasoning:
        return FinishReason.REASONING_ONLY
    if finish is FinishReason.CONTENT_FILTER:
        raise UpstreamError(
            UpstreamFailure.CONTENT_FILTER, "the upstream's content filter removed the whole answer"
        )
    raise UpstreamError(
        UpstreamFailure.EMPTY_ANSWER, "the upstream returned no content, reasoning or tool call"
    )


class StreamAssembler:
    """Turns stream chunks into ChatDeltas, payload first, with one final delta at the end.

    Payload (text, reasoning, tool-call fragments) goes out with the chunk that carried it.
    The finish reason and usage often come in two chunks (usage last, with empty choices), so
    the final delta is emitted once both are known, or at the end of the stream, and carries
    both: the last delta a caller sees always has the finish reason.
    """

    __slots__ = ("_calls", "_content", "_finish", "_model", "_reasoning", "_sent_final", "_usage")

    def __init__(self) -> None:
        self._finish: FinishReason | None = None
        self._usage: Usage | None = None
        self._model = ""
        self._content = self._reasoning = self._calls = False
        self._sent_final = False

    @property
    def finished(self) -> bool:
        """The upstream sent its finish reason: the answer is whole."""
        return self._finish is not None

    @property
    def has_usage(self) -> bool:
        """The upstream sent usage counts."""
        return self._usage is not None

    def feed(self, chunk: object) -> list[ChatDelta]:
        """The deltas one chunk yields now (zero, one, or a payload and the final one)."""
        if not isinstance(chunk, Mapping):
            raise _bad("a stream chunk is not a JSON object")
        if chunk.get("model"):
            self._model = str(chunk["model"])
        if chunk.get("usage"):
            self._usage = parse_usage(chunk["usage"])
        out: list[ChatDelta] = []
        choices = chunk.get("choices")
        if isinstance(choices, list) and choices and isinstance(choices[0], Mapping):
            choice = choices[0]
            delta = self._payload(choice.get("delta"))
            if delta is not None:
                out.append(delta)
            if choice.get("finish_reason"):
                self._finish = map_finish_reason(choice["finish_reason"])
        if self._finish is not None and self._usage is not None and not self._sent_final:
            out.append(self._final())
        return out

    def end(self, *, done: bool) -> ChatDelta | None:
        """The final delta at end of stream, if not sent yet.

        Args:
            done: The server sent ``[DONE]`` (or its format's equivalent end marker).

        Raises:
            UpstreamError: BAD_RESPONSE when the stream was cut (neither a finish reason nor
                an end marker), EMPTY_ANSWER when it carried nothing.
        """
        if self._sent_final:
            return None
        if self._finish is None:
            if not done:
                raise _bad("the stream ended before a finish reason (cut mid-stream)")
            self._finish = FinishReason.STOP
        return self._final()

    def _payload(self, raw: object) -> ChatDelta | None:
        if not isinstance(raw, Mapping):
            return None
        content = _text(raw.get("content"))
        reasoning = reasoning_of(raw)
        calls = tuple(
            ToolCallDelta(
                index=_int(tc.get("index", i)),
                id=str(tc.get("id") or ""),
                name=str(_get(tc.get("function"), "name") or ""),
                arguments=_arguments(_get(tc.get("function"), "arguments")),
            )
            for i, tc in enumerate(raw.get("tool_calls") or ())
            if isinstance(tc, Mapping)
        )
        if not (content or reasoning or calls):
            return None
        self._content |= bool(content)
        self._reasoning |= bool(reasoning)
        self._calls |= bool(calls)
        return ChatDelta(
            content=content, reasoning_content=reasoning, tool_calls=calls, model=self._model
        )

    def _final(self) -> ChatDelta:
        finish = final_reason(
            self._finish or FinishReason.STOP, self._content, self._reasoning, self._calls
        )
        self._sent_final = True
        return ChatDelta(finish_reason=finish, usage=self._usage, model=self._model)


def parse_embed_answer(data: object, expected: int) -> EmbedAnswer:
    """Vectors in input order (sorted by ``index``) from an /embeddings response."""
    if not isinstance(data, Mapping) or not isinstance(data.get("data"), list):
        raise _bad("the embeddings answer has no data list")
    items = [d for d in data["data"] if isinstance(d, Mapping)]
    items.sort(key=lambda d: _int(d.get("index")))
    try:
        vectors = tuple(tuple(float(x) for x in d["embedding"]) for d in items)
    except (KeyError, TypeError, ValueError):
        raise _bad("an embedding is not a list of numbers") from None
    if len(vectors) != expected:
        raise _bad(f"expected {expected} embeddings, got {len(vectors)}")
    return EmbedAnswer(
        vectors=vectors, usage=parse_usage(data.get("usage")), model=str(data.get("model") or "")
    )


# ---------------------------------------------------------------- helpers


def _bad(message: str) -> UpstreamError:
    return UpstreamError(UpstreamFailure.BAD_RESPONSE, f"malformed upstream answer: {message}")


def _get(obj: object, key: str) -> Any:
    return obj.get(key) if isinstance(obj, Mapping) else None


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _text(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # some servers answer with content parts
        return "".join(str(_get(p, "text") or "") for p in content)
    return ""


def _arguments(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode()
