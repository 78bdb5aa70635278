"""GatewayClient against a real grpc.aio server running a fake GatewayService."""

from __future__ import annotations

import grpc
import pytest

from llmgateway.client import GatewayClient, GatewayError
from llmgateway.testing import FakeGateway, rich_status, unavailable
from llmgateway.v1 import chat_pb2, common_pb2

API_KEY = "sk-test-0123456789"


def test_chat_sends_prompt_options_and_enum_names(fake: FakeGateway, threaded_target: str) -> None:
    with GatewayClient(threaded_target) as client:
        answer = client.chat(
            "What is 2+2?",
            model="chat",
            system="Be brief.",
            privacy="strict",
            task="CHAT",
            temperature=0.0,
            max_tokens=64,
            reasoning_effort="high",
            stop=["\n\n"],
            metadata={"module": "rag"},
        )
    assert answer.content == "echo: What is 2+2?"
    assert answer.reasoning_content == "thinking about it"
    sent: chat_pb2.ChatRequest = fake.calls[0].request
    assert [(m.role, m.content) for m in sent.messages] == [
        (chat_pb2.ROLE_SYSTEM, "Be brief."),
        (chat_pb2.ROLE_USER, "What is 2+2?"),
    ]
    assert sent.model == "chat"
    assert sent.privacy == common_pb2.PRIVACY_STRICT
    assert sent.task == common_pb2.TASK_CHAT
    assert sent.reasoning_effort == chat_pb2.REASONING_EFFORT_HIGH
    # temperature 0 is set, not left out: the proto field is `optional`.
    assert sent.HasField("temperature")
    assert sent.temperature == 0.0
    assert sent.max_tokens == 64
    assert list(sent.stop) == ["\n\n"]
    assert dict(sent.metadata) == {"module": "rag"}


def test_chat_accepts_turns_as_dicts_and_a_whole_request(
    fake: FakeGateway, threaded_target: str
) -> None:
    turns = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
        {"role": "ROLE_USER", "content": "Bye"},
    ]
    request = chat_pb2.ChatRequest(
        model="direct", messages=[chat_pb2.Message(role=chat_pb2.ROLE_USER, content="Raw")]
    )
    with GatewayClient(threaded_target) as client:
        assert client.chat(turns).content == "echo: Bye"
        assert client.chat(request).route == "direct"
        with pytest.raises(TypeError, match="inside the request"):
            client.chat(request, model="other")
    roles = [m.role for m in fake.calls[0].request.messages]
    assert roles == [chat_pb2.ROLE_USER, chat_pb2.ROLE_ASSISTANT, chat_pb2.ROLE_USER]
    assert fake.calls[1].request == request


def test_bad_enum_name_fails_before_any_call(fake: FakeGateway, threaded_target: str) -> None:
    with GatewayClient(threaded_target) as client, pytest.raises(ValueError, match="strict"):
        client.chat("Hi", privacy="secret")
    assert fake.calls == []


def test_complete_returns_the_content(threaded_target: str) -> None:
    with GatewayClient(threaded_target) as client:
        assert client.complete("ping", model="chat") == "echo: ping"


def test_api_key_and_request_id_metadata(fake: FakeGateway, threaded_target: str) -> None:
    with GatewayClient(threaded_target, api_key=API_KEY) as client:
        answer = client.chat("Hi", request_id="req-42")
        client.chat("Hi")
    first, second = fake.calls
    assert first.metadata["authorization"] == f"Bearer {API_KEY}"
    assert first.metadata["x-request-id"] == "req-42"
    assert answer.request_id == "req-42"
    assert second.metadata["authorization"] == f"Bearer {API_KEY}"
    assert "x-request-id" not in second.metadata


def test_no_api_key_sends_no_authorization(fake: FakeGateway, threaded_target: str) -> None:
    with GatewayClient(threaded_target) as client:
        client.health()
    assert "authorization" not in fake.calls[0].metadata


def test_default_deadline_reaches_the_server(fake: FakeGateway, threaded_target: str) -> None:
    with GatewayClient(threaded_target, timeout=20.0) as client:
        client.health()
        client.health(timeout=2.0)
    default, override = (call.time_remaining for call in fake.calls)
    # The grpc-timeout header is rounded up a little on the wire.
    assert default is not None and 10.0 < default <= 20.5
    assert override is not None and 0 < override <= 2.5


def test_slow_server_hits_the_default_deadline(fake: FakeGateway, threaded_target: str) -> None:
    fake.delay = 30
    with GatewayClient(threaded_target, timeout=0.3) as client, pytest.raises(GatewayError) as err:
        client.chat("Hi")
    assert err.value.code == grpc.StatusCode.DEADLINE_EXCEEDED


def test_per_call_timeout_overrides_the_default(fake: FakeGateway, threaded_target: str) -> None:
    fake.delay = 0.5
    with GatewayClient(threaded_target, timeout=0.1) as client:
        assert client.complete("Hi", timeout=10) == "echo: Hi"
    with GatewayClient(threaded_target) as client, pytest.raises(GatewayError) as err:
        client.chat("Hi", timeout=0.1)
    assert err.value.code == grpc.StatusCode.DEADLINE_EXCEEDED


def test_unavailable_is_retried_by_grpc(fake: FakeGateway, threaded_target: str) -> None:
    fake.failures = [unavailable(), unavailable()]
    with GatewayClient(threaded_target, api_key=API_KEY) as client:
        assert client.complete("Hi", request_id="req-r") == "echo: Hi"
    assert fake.methods() == ["Chat"] * 3
    # Every attempt carries the same metadata.
    assert {call.metadata["x-request-id"] for call in fake.calls} == {"req-r"}


def test_a_failure_after_response_headers_is_not_retried(
    fake: FakeGateway, threaded_target: str
) -> None:
    """gRFC A6: response headers commit a call. The gateway must therefore
    send its headers (x-request-id) only with its first message, and put the
    request id in the trailers when it fails, or UNAVAILABLE is never retried.
    """
    fake.headers_first = True
    fake.failures = [unavailable()]
    with GatewayClient(threaded_target) as client, pytest.raises(GatewayError) as err:
        client.chat("Hi")
    assert err.value.code == grpc.StatusCode.UNAVAILABLE
    assert len(fake.calls) == 1


def test_retries_stop_at_max_attempts(fake: FakeGateway, threaded_target: str) -> None:
    fake.failures = [unavailable() for _ in range(5)]
    with (
        GatewayClient(threaded_target, max_attempts=2) as client,
        pytest.raises(GatewayError) as err,
    ):
        client.chat("Hi")
    assert err.value.code == grpc.StatusCode.UNAVAILABLE
    assert err.value.reason == "ALL_TARGETS_FAILED"
    assert len(fake.calls) == 2


def test_retries_can_be_turned_off(fake: FakeGateway, threaded_target: str) -> None:
    fake.failures = [unavailable()]
    with GatewayClient(threaded_target, retry_unavailable=False) as client:
        with pytest.raises(GatewayError) as err:
            client.chat("Hi")
        assert client.complete("Hi") == "echo: Hi"
    assert err.value.code == grpc.StatusCode.UNAVAILABLE
    assert len(fake.calls) == 2


def test_invalid_argument_is_not_retried(fake: FakeGateway, threaded_target: str) -> None:
    fake.failures = [
        rich_status(
            grpc.StatusCode.INVALID_ARGUMENT,
            "max_tokens must not be negative",
            "INVALID_FIELD",
            metadata={"field": "max_tokens"},
        )
    ]
    with GatewayClient(threaded_target) as client, pytest.raises(GatewayError) as err:
        client.chat("Hi", max_tokens=-1)
    assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.reason == "INVALID_FIELD"
    assert err.value.metadata == {"field": "max_tokens"}
    assert err.value.retry_after is None
    assert len(fake.calls) == 1


def test_error_details_are_decoded(fake: FakeGateway, threaded_target: str) -> None:
    fake.failures = [
        rich_status(
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "rate limit reached",
            "RATE_LIMITED",
            retry_after=1.5,
            metadata={"limit": "rpm"},
        )
    ]
    with (
        GatewayClient(threaded_target, api_key=API_KEY) as client,
        pytest.raises(GatewayError) as err,
    ):
        client.chat("Hi", request_id="req-7")
    error = err.value
    assert error.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert error.message == "rate limit reached"
    assert error.reason == "RATE_LIMITED"
    assert error.domain == "llm-gateway"
    assert error.metadata == {"limit": "rpm"}
    assert error.retry_after == pytest.approx(1.5)
    assert error.request_id == "req-7"
    assert error.status is not None and len(error.status.details) == 2
    assert isinstance(error.__cause__, grpc.RpcError)
    assert "RATE_LIMITED" in str(error) and "req-7" in str(error)
    assert API_KEY not in str(error) and API_KEY not in repr(error)
    assert API_KEY not in repr(client)


def test_request_id_comes_back_when_the_caller_sent_none(
    fake: FakeGateway, threaded_target: str
) -> None:
    fake.failures = [unavailable()]
    client = GatewayClient(threaded_target, retry_unavailable=False)
    with client, pytest.raises(GatewayError) as err:
        client.embed(["a"])
    assert err.value.request_id == "generated-1"


def test_stream_yields_deltas_then_the_summary(fake: FakeGateway, threaded_target: str) -> None:
    with GatewayClient(threaded_target) as client:
        events = list(client.stream("Hi", model="chat", privacy="flexible"))
        text = list(client.stream_text("Hi"))
    kinds = [event.WhichOneof("event") for event in events]
    assert kinds == ["delta", "delta", "delta", "summary"]
    assert events[0].delta.reasoning_content == "hmm"
    assert events[-1].summary.finish_reason == chat_pb2.FINISH_REASON_STOP
    assert text == ["Hel", "lo"]
    sent: chat_pb2.StreamChatRequest = fake.calls[0].request
    assert isinstance(sent, chat_pb2.StreamChatRequest)
    assert sent.model == "chat"
    assert sent.privacy == common_pb2.PRIVACY_FLEXIBLE


def test_stream_is_retried_only_before_the_first_message(
    fake: FakeGateway, threaded_target: str
) -> None:
    fake.failures = [unavailable()]
    with GatewayClient(threaded_target) as client:
        assert "".join(client.stream_text("Hi")) == "Hello"
    assert fake.methods() == ["StreamChat", "StreamChat"]

    fake.calls.clear()
    fake.cut_stream = True
    received: list[str] = []
    with GatewayClient(threaded_target) as client, pytest.raises(GatewayError) as err:
        received.extend(client.stream_text("Hi"))
    assert received == ["Hel", "lo"]
    assert err.value.code == grpc.StatusCode.UNAVAILABLE
    assert err.value.reason == "STREAM_INTERRUPTED"
    # A stream that already sent messages is committed: gRPC does not replay it.
    assert len(fake.calls) == 1


def test_leaving_a_stream_early_cancels_the_call(fake: FakeGateway, threaded_target: str) -> None:
    fake.stream_pause = 30
    with GatewayClient(threaded_target) as client:
        for piece in client.stream_text("Hi"):
            assert piece == "Hel"
            break
        assert fake.stream_cancelled.wait(10)
        assert client.complete("again") == "echo: again"


def test_embed_returns_one_vector_per_input_in_order(
    fake: FakeGateway, threaded_target: str
) -> None:
    with GatewayClient(threaded_target) as client:
        vectors = client.embed(["a", "bbb", "cc"], model="embedding", dimensions=2)
        # A bare str is one input (as in the openai SDK), not a list of characters.
        single = client.embed("four")
    assert vectors == [[1.0, 0.0], [3.0, 1.0], [2.0, 2.0]]
    assert single == [[4.0, 0.0]]
    assert list(fake.calls[1].request.inputs) == ["four"]
    sent = fake.calls[0].request
    assert list(sent.inputs) == ["a", "bbb", "cc"]
    assert sent.model == "embedding"
    assert sent.dimensions == 2


def test_list_models_health_and_stats(fake: FakeGateway, threaded_target: str) -> None:
    with GatewayClient(threaded_target) as client:
        models = client.list_models(task="embedding")
        health = client.health()
        stats = client.stats(tenant="team-a")
    assert [route.name for route in models.routes] == ["chat"]
    assert fake.calls[0].request.task == common_pb2.TASK_EMBEDDING
    assert health.ready
    assert health.config_generation == 3
    assert stats.stats[0].tenant == "team-a"
    assert fake.methods() == ["ListModels", "Health", "GetStats"]


def test_closed_client_refuses_calls(threaded_target: str) -> None:
    client = GatewayClient(threaded_target)
    client.close()
    with pytest.raises(ValueError, match="closed"):
        client.health()


@pytest.mark.parametrize("attempts", [1, 6])
def test_max_attempts_outside_what_grpc_allows_is_refused(attempts: int) -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        GatewayClient("127.0.0.1:1", max_attempts=attempts)
