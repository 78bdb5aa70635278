"""The client's OpenAI-shaped request parts through a real gateway to a real fake upstream."""

from __future__ import annotations

from typing import Any

from llmgateway.client import AsyncGatewayClient, FinishReason
from tests.fakes import Behaviour, FakeOpenAI
from tests.service.conftest import Start, config_for, start_gateway, upstream

__all__ = ["start_gateway", "upstream"]  # Fixtures shared with the service tests.

WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
PERSON_FORMAT: dict[str, Any] = {
    "type": "json_schema",
    "json_schema": {
        "name": "person",
        "schema": {"type": "object", "properties": {"name": {"type": "string"}}},
        "strict": True,
    },
}


async def test_openai_shaped_dicts_reach_the_upstream(
    start_gateway: Start, upstream: FakeOpenAI
) -> None:
    gateway = await start_gateway(config_for(upstream.base_url))
    upstream.behaviour = Behaviour(content='{"name": "Ada"}')
    async with AsyncGatewayClient(f"127.0.0.1:{gateway.server.port}", timeout=10) as client:
        answer = await client.chat(
            [{"role": "user", "content": "Who?"}],
            model="chat",
            tools=[WEATHER_TOOL],
            tool_choice="auto",
            response_format=PERSON_FORMAT,
        )
        vectors = await client.embed("one text", model="embedding")
    assert answer.content == '{"name": "Ada"}'
    assert answer.finish_reason == FinishReason.STOP
    assert len(vectors) == 1
    chat_body = next(r.json for r in upstream.requests if r.path.endswith("/chat/completions"))
    assert chat_body["tools"][0]["type"] == "function"
    assert chat_body["tools"][0]["function"]["name"] == "get_weather"
    assert chat_body["tools"][0]["function"]["parameters"] == WEATHER_TOOL["function"]["parameters"]
    assert chat_body["tool_choice"] == "auto"
    assert chat_body["response_format"]["type"] == "json_schema"
    assert chat_body["response_format"]["json_schema"]["name"] == "person"
    assert (
        chat_body["response_format"]["json_schema"]["schema"]
        == PERSON_FORMAT["json_schema"]["schema"]
    )
