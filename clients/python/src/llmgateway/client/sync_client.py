"""GatewayClient: the blocking client, on a `grpc.Channel`."""

from __future__ import annotations

from collections.abc import Generator, Mapping, Sequence
from contextlib import closing
from types import TracebackType
from typing import Any, Self, Unpack

import grpc

from llmgateway.client.answers import ChatAnswer
from llmgateway.client.channel import DEFAULT_TIMEOUT_S, CallSettings
from llmgateway.client.client_base import ClientBase
from llmgateway.client.errors import gateway_errors
from llmgateway.client.options import ChatOptions, EnumLike
from llmgateway.client.request_builders import (
    ChatInput,
    build_chat_request,
    build_embed_request,
    list_models_request,
    split_call_options,
    to_stream_request,
)
from llmgateway.v1 import chat_pb2, gateway_service_pb2_grpc, models_pb2, stats_pb2


class GatewayClient(ClientBase):
    """A blocking llm-gateway client; use it as a context manager to close it.

    Every call carries the API key as `authorization: Bearer <key>` and a
    deadline (`timeout` seconds unless the call gives its own). gRPC retries
    UNAVAILABLE itself, through the channel's service config. Failures raise
    `GatewayError`. The constructor's arguments are those of `ClientBase`.

    Example:
        >>> with GatewayClient("localhost:50051", api_key=key) as client:
        ...     print(client.complete("Say hi", model="chat"))
    """

    _channel: grpc.Channel
    _stub: gateway_service_pb2_grpc.GatewayServiceStub

    def _open_channel(self) -> None:
        tls, args = self._channel_credentials, self._channel_options
        self._use(
            grpc.secure_channel(self.target, tls, options=args)
            if tls is not None
            else grpc.insecure_channel(self.target, options=args)
        )

    def _use(self, channel: grpc.Channel) -> None:
        self._channel = channel
        self._stub = gateway_service_pb2_grpc.GatewayServiceStub(channel)

    @classmethod
    def from_channel(
        cls,
        channel: grpc.Channel,
        *,
        api_key: str | None = None,
        timeout: float | None = DEFAULT_TIMEOUT_S,
    ) -> Self:
        """A client on a channel the caller made (own interceptors or options, grpc_testing).

        The channel's options are the caller's: the retry policy and message
        limits of the constructor are not applied. `close()` closes the channel.
        """
        client = cls.__new__(cls)
        client.target = "<channel>"
        client._settings = CallSettings(api_key=api_key, timeout=timeout)
        client._use(channel)
        return client

    def close(self) -> None:
        """Close the channel; calls in flight are cancelled. Later calls fail."""
        self._channel.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def chat(self, messages: ChatInput, **options: Unpack[ChatOptions]) -> ChatAnswer:
        """Ask for one complete answer.

        Args:
            messages: A user prompt, a list of turns (Messages, or dicts as
                the openai SDK or the proto's JSON form spells them), or a
                whole request.
            **options: The ChatOptions: `model`, `system`, `privacy`, `task`,
                `tools`, `tool_choice`, `response_format`, `temperature`,
                `max_tokens`, `reasoning_effort`, ..., `timeout`, `request_id`.
                Enums take short names (`"strict"`, `"high"`); `tools`,
                `tool_choice` and `response_format` take openai SDK dicts.

        Returns:
            The answer, with `content`, `reasoning_content`, `tool_calls`,
            `finish_reason`, `usage`, the fallback trace (`attempts`) and the
            ChatResponse itself (`response`).

        Raises:
            TypeError: An unknown option.
            ValueError: An option's value does not fit its field.
            GatewayError: The call failed.
        """
        fields, timeout, request_id = split_call_options(options)
        request = build_chat_request(messages, fields)
        with gateway_errors(request_id):
            response = self._stub.Chat(request, **self._call(timeout, request_id))
        return ChatAnswer(response)

    def complete(self, text: str, **options: Unpack[ChatOptions]) -> str:
        """Text in, text out: the answer's content for a one-turn prompt.

        Takes the options of `chat()`. A reasoning model that spent its token
        budget thinking gives an empty string here (finish reason
        `REASONING_ONLY`); `chat()` shows `reasoning_content` and the reason.

        Raises:
            GatewayError: The call failed.
        """
        return self.chat(text, **options).content

    def stream(
        self, messages: ChatInput, **options: Unpack[ChatOptions]
    ) -> Generator[chat_pb2.StreamChatResponse, None, None]:
        """Stream an answer: deltas as they are generated, then one summary.

        Takes the arguments of `chat()`; `timeout` bounds the whole stream.
        Leaving the loop early cancels the call, and so the upstream request.

        Raises:
            TypeError, ValueError: Bad options, at once (before iterating).
            GatewayError: The call failed, also after some deltas: then the
                summary had `cut` set and the reason is `STREAM_INTERRUPTED`.
        """
        fields, timeout, request_id = split_call_options(options)
        request = to_stream_request(build_chat_request(messages, fields))
        return self._stream(request, timeout, request_id)

    def _stream(
        self, request: chat_pb2.StreamChatRequest, timeout: float | None, request_id: str | None
    ) -> Generator[chat_pb2.StreamChatResponse, None, None]:
        call = self._stub.StreamChat(request, **self._call(timeout, request_id))
        try:
            with gateway_errors(request_id):
                yield from call
        finally:
            call.cancel()

    def stream_text(
        self, messages: ChatInput, **options: Unpack[ChatOptions]
    ) -> Generator[str, None, None]:
        """Stream only the answer's content, piece by piece.

        Takes the arguments of `stream()`. Reasoning and tool-call deltas and
        the summary are skipped; `stream()` has them.

        Raises:
            GatewayError: The call failed.
        """
        return _texts(self.stream(messages, **options))

    def embed(
        self,
        inputs: str | Sequence[str],
        *,
        model: str = "",
        privacy: EnumLike | None = None,
        dimensions: int | None = None,
        timeout: float | None = None,
        request_id: str | None = None,
        provider_options: Mapping[str, Any] | None = None,
    ) -> list[list[float]]:
        """Embed texts: one vector per input, in input order (one for a str).

        `provider_options` are upstream-specific options (such as Ollama's
        `keep_alive`); chat takes them as the `provider_options` field.

        Raises:
            GatewayError: The call failed.
        """
        request = build_embed_request(
            inputs,
            model=model,
            privacy=privacy,
            dimensions=dimensions,
            provider_options=provider_options,
        )
        with gateway_errors(request_id):
            response = self._stub.Embed(request, **self._call(timeout, request_id))
        return [list(embedding.values) for embedding in response.embeddings]

    def list_models(
        self,
        *,
        task: EnumLike | None = None,
        timeout: float | None = None,
        request_id: str | None = None,
    ) -> models_pb2.ListModelsResponse:
        """The routes and targets this client's key may use, optionally of one task."""
        with gateway_errors(request_id):
            return self._stub.ListModels(
                list_models_request(task), **self._call(timeout, request_id)
            )

    def health(
        self, *, timeout: float | None = None, request_id: str | None = None
    ) -> models_pb2.HealthResponse:
        """Live detail per route, target and provider (breakers, latency, errors)."""
        with gateway_errors(request_id):
            return self._stub.Health(models_pb2.HealthRequest(), **self._call(timeout, request_id))

    def stats(
        self,
        *,
        tenant: str = "",
        route: str = "",
        timeout: float | None = None,
        request_id: str | None = None,
    ) -> stats_pb2.GetStatsResponse:
        """Usage counters per tenant and route, and the tenants' budgets."""
        request = stats_pb2.GetStatsRequest(tenant=tenant, route=route)
        with gateway_errors(request_id):
            return self._stub.GetStats(request, **self._call(timeout, request_id))


def _texts(
    events: Generator[chat_pb2.StreamChatResponse, None, None],
) -> Generator[str, None, None]:
    # Closing this generator closes `events`, which cancels the call.
    with closing(events):
        for event in events:
            if event.WhichOneof("event") == "delta" and event.delta.content:
                yield event.delta.content
