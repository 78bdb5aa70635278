"""GatewayClient: the blocking client, on a `grpc.Channel`."""

from __future__ import annotations

from collections.abc import Generator, Mapping, Sequence
from types import TracebackType
from typing import Any, Self

import grpc

from llmgateway.client.client_base import ClientBase
from llmgateway.client.errors import gateway_errors
from llmgateway.client.request_builders import (
    ChatInput,
    EnumLike,
    build_chat_request,
    build_embed_request,
    list_models_request,
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
        self._channel = (
            grpc.secure_channel(self.target, tls, options=args)
            if tls is not None
            else grpc.insecure_channel(self.target, options=args)
        )
        self._stub = gateway_service_pb2_grpc.GatewayServiceStub(self._channel)

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

    def chat(
        self,
        messages: ChatInput,
        *,
        model: str = "",
        system: str | None = None,
        privacy: EnumLike | None = None,
        task: EnumLike | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        timeout: float | None = None,
        request_id: str | None = None,
        **fields: Any,
    ) -> chat_pb2.ChatResponse:
        """Ask for one complete answer.

        Args:
            messages: A user prompt, a list of turns (Messages or dicts such as
                `{"role": "user", "content": "Hi"}`), or a whole request.
            model: A route name (`chat`, `vision`) or `provider/model`.
            system: A system prompt put before the conversation.
            privacy: `"strict"`, `"flexible"` or a `Privacy` value.
            task: `"chat"`, `"vision"`, `"ocr"` or a `Task` value.
            temperature: Sampling temperature; unset means the model's default.
            max_tokens: Upper bound on generated tokens, reasoning included.
            timeout: This call's deadline in seconds instead of the default.
            request_id: Sent as `x-request-id`; the gateway logs under it.
            **fields: Any other ChatRequest field by name (`top_p`, `stop`,
                `tools`, `reasoning_effort="high"`, `metadata`...).

        Returns:
            The answer, with `content`, `reasoning_content`, `tool_calls`,
            `finish_reason`, `usage` and the fallback trace (`attempts`).

        Raises:
            GatewayError: The call failed.
        """
        request = build_chat_request(
            messages,
            model=model,
            system=system,
            privacy=privacy,
            task=task,
            temperature=temperature,
            max_tokens=max_tokens,
            fields=fields,
        )
        with gateway_errors(request_id):
            return self._stub.Chat(request, **self._call(timeout, request_id))

    def complete(self, text: str, **options: Any) -> str:
        """Text in, text out: the answer's content for a one-turn prompt.

        Takes the options of `chat()`. A reasoning model that spent its token
        budget thinking gives an empty string here (finish reason
        `REASONING_ONLY`); `chat()` shows `reasoning_content` and the reason.

        Raises:
            GatewayError: The call failed.
        """
        return self.chat(text, **options).content

    def stream(
        self,
        messages: ChatInput,
        *,
        model: str = "",
        system: str | None = None,
        privacy: EnumLike | None = None,
        task: EnumLike | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        timeout: float | None = None,
        request_id: str | None = None,
        **fields: Any,
    ) -> Generator[chat_pb2.StreamChatResponse, None, None]:
        """Stream an answer: deltas as they are generated, then one summary.

        Takes the arguments of `chat()`; `timeout` bounds the whole stream.
        Leaving the loop early cancels the call, and so the upstream request.

        Raises:
            GatewayError: The call failed, also after some deltas: then the
                summary had `cut` set and the reason is `STREAM_INTERRUPTED`.
        """
        request = build_chat_request(
            messages,
            model=model,
            system=system,
            privacy=privacy,
            task=task,
            temperature=temperature,
            max_tokens=max_tokens,
            fields=fields,
        )
        call = self._stub.StreamChat(to_stream_request(request), **self._call(timeout, request_id))
        try:
            with gateway_errors(request_id):
                yield from call
        finally:
            call.cancel()

    def stream_text(self, messages: ChatInput, **options: Any) -> Generator[str, None, None]:
        """Stream only the answer's content, piece by piece.

        Takes the arguments of `stream()`. Reasoning and tool-call deltas and
        the summary are skipped; `stream()` has them.

        Raises:
            GatewayError: The call failed.
        """
        for event in self.stream(messages, **options):
            if event.WhichOneof("event") == "delta" and event.delta.content:
                yield event.delta.content

    def embed(
        self,
        inputs: Sequence[str],
        *,
        model: str = "",
        privacy: EnumLike | None = None,
        dimensions: int | None = None,
        timeout: float | None = None,
        request_id: str | None = None,
        provider_options: Mapping[str, Any] | None = None,
    ) -> list[list[float]]:
        """Embed a batch of texts: one vector per input, in input order.

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
