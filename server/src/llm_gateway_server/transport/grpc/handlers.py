"""Registers the servicer with request parsers that turn an undecodable message into a
clear INVALID_ARGUMENT instead of gRPC's bare UNKNOWN "Unexpected DecodeError"."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
from google.protobuf.message import DecodeError, Message

from llmgateway.v1 import chat_pb2, embed_pb2, models_pb2, stats_pb2

SERVICE = "llmgateway.v1.GatewayService"


class Undecodable:
    """A request body that is not the method's protobuf message (the servicer refuses it)."""

    __slots__ = ("error",)

    def __init__(self, error: str) -> None:
        self.error = error


def _lenient(cls: type[Message]) -> Callable[[bytes], object]:
    parse = cls.FromString

    def deserialize(data: bytes) -> object:
        try:
            return parse(data)
        except DecodeError as exc:
            return Undecodable(str(exc) or "the message could not be decoded")

    return deserialize


def register(servicer: Any, server: grpc.aio.Server) -> None:
    """Add the GatewayService methods of ``servicer`` to ``server``."""
    unary, stream = grpc.unary_unary_rpc_method_handler, grpc.unary_stream_rpc_method_handler
    handlers = {
        "Chat": unary(
            servicer.Chat,
            request_deserializer=_lenient(chat_pb2.ChatRequest),
            response_serializer=chat_pb2.ChatResponse.SerializeToString,
        ),
        "StreamChat": stream(
            servicer.StreamChat,
            request_deserializer=_lenient(chat_pb2.StreamChatRequest),
            response_serializer=chat_pb2.StreamChatResponse.SerializeToString,
        ),
        "Embed": unary(
            servicer.Embed,
            request_deserializer=_lenient(embed_pb2.EmbedRequest),
            response_serializer=embed_pb2.EmbedResponse.SerializeToString,
        ),
        "ListModels": unary(
            servicer.ListModels,
            request_deserializer=_lenient(models_pb2.ListModelsRequest),
            response_serializer=models_pb2.ListModelsResponse.SerializeToString,
        ),
        "Health": unary(
            servicer.Health,
            request_deserializer=_lenient(models_pb2.HealthRequest),
            response_serializer=models_pb2.HealthResponse.SerializeToString,
        ),
        "GetStats": unary(
            servicer.GetStats,
            request_deserializer=_lenient(stats_pb2.GetStatsRequest),
            response_serializer=stats_pb2.GetStatsResponse.SerializeToString,
        ),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    server.add_registered_method_handlers(SERVICE, handlers)
