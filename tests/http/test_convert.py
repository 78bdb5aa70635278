"""The facade's conversions that no client test reaches: field paths, options kept for later."""

from __future__ import annotations

from llm_gateway_server.core.types import ReasoningEffort
from llm_gateway_server.transport.http import ollama_convert
from llm_gateway_server.transport.http import ollama_models as m
from llm_gateway_server.transport.http.bodies import field_path


def test_field_path_drops_union_branch_names() -> None:
    loc = ("messages", 0, "content", "list[tagged-union[TextContent,ImageContent]]", 1, "image_url")
    assert field_path(loc) == "messages[0].content[1].image_url"
    assert field_path(("tool_choice", "NamedToolChoice", "function", "name")) == (
        "tool_choice.function.name"
    )
    assert field_path(()) == "body"


def test_options_beyond_sampling_travel_as_provider_options() -> None:
    req = m.ChatRequest.model_validate(
        {
            "model": "chat",
            "messages": [{"role": "user", "content": "x"}],
            "options": {
                "temperature": 0.5,
                "num_predict": -1,
                "top_k": 40,
                "num_ctx": 8192,
                "mirostat": 2,
            },
            "think": False,
        }
    )
    chat = ollama_convert.chat_request(req, max_image_bytes=1000)
    assert chat.sampling.temperature == 0.5
    assert chat.sampling.max_tokens is None  # -1: no limit
    assert chat.sampling.reasoning_effort is ReasoningEffort.NONE  # think: false
    assert chat.provider_options == {"top_k": 40, "num_ctx": 8192, "mirostat": 2}
