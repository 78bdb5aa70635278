"""A stream is complete at its finish reason (and usage, when asked), with or without
``[DONE]``: a server that then holds the connection open gets it closed, and the caller
gets the whole answer, not a cut one after the provider's timeout."""

from __future__ import annotations

import pytest

from llmgateway.v1 import chat_pb2
from tests.fakes import Behaviour, FakeOpenAI, FakeUsage
from tests.hostile.conftest import Spawn, gateway_config

ROUTES = "  chat: {targets: [{provider: local, model: m}]}\n"


@pytest.mark.parametrize(
    "separate_usage", [False, True, None], ids=["usage-in-finish", "usage-after", "no-usage"]
)
@pytest.mark.parametrize("send_done", [False, True], ids=["no-done", "done"])
async def test_finished_stream_held_open_completes(
    spawn_gateway: Spawn, separate_usage: bool | None, send_done: bool
) -> None:
    async with FakeOpenAI() as fake:
        # A provider timeout long past the test's own: only ending at the finish passes.
        gw = await spawn_gateway(
            gateway_config(
                f"  local: {{kind: openai_compatible, api_base: '{fake.base_url}',"
                " locality: local, timeout_s: 120, retry: {max_attempts: 1},"
                " probe: {enabled: false}}\n",
                ROUTES,
            )
        )
        request = chat_pb2.StreamChatRequest(
            model="chat", messages=[chat_pb2.Message(role=chat_pb2.ROLE_USER, content="hi")]
        )
        _ = [m async for m in gw.stub.StreamChat(request, timeout=50)]  # connections made
        fds = gw.fds()
        fake.behaviour = Behaviour(
            content="the whole answer",
            usage=FakeUsage(5, 3),
            hold_open=True,
            send_done=send_done,
            usage_in_separate_chunk=bool(separate_usage),
            # None: a server that ignores include_usage, so the usage never comes.
            omit_usage=separate_usage is None,
        )
        messages = [m async for m in gw.stub.StreamChat(request, timeout=50)]
        text = "".join(m.delta.content for m in messages if m.HasField("delta"))
        assert text == "the whole answer"
        summary = messages[-1].summary
        assert messages[-1].HasField("summary")
        assert not summary.cut
        assert summary.finish_reason == chat_pb2.FINISH_REASON_STOP
        if separate_usage is None:
            # No usage came: the gateway's own count of what was delivered, never 0 (a
            # stream is charged what it sent).
            assert summary.usage.completion_tokens > 0
        else:
            assert summary.usage.completion_tokens == 3
        # The gateway hung up on the held-open body rather than waiting for its end.
        await fake.wait_disconnect()
        await fake.wait_no_connections()
        assert await gw.wait_fds_at_most(fds) <= fds
        target = next(t for t in (await gw.health()).targets if t.provider == "local")
        assert target.last_error == ""
