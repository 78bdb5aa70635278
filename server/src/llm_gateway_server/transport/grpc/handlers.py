"""Registers the servicer with request parsers that turn an undecodable message into a
clear INVALID_ARGUMENT instead of gRPC's bare UNKNOWN "Unexpected DecodeError"."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
from google.protobuf import message_factory
from google.protobuf.message import DecodeError, Message

from llmgateway.v1 import gateway_service_pb2

SERVICE = gateway_service_pb2.DESCRIPTOR.services_by_name["GatewayService"].full_name


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
    """Add the GatewayService methods of ``servicer`` to ``server``.

    The handlers come from the contract's own service descriptor, so every RPC it declares
    is served (a method missing on the servicer fails here, at start-up), each with the
    lenient parser of its request message.
    """
    service = gateway_service_pb2.DESCRIPTOR.services_by_name["GatewayService"]
    handlers = {}
    for method in service.methods:
        request = message_factory.GetMessageClass(method.input_type)
        response = message_factory.GetMessageClass(method.output_type)
        make = (
            grpc.unary_stream_rpc_method_handler
            if method.server_streaming
            else grpc.unary_unary_rpc_method_handler
        )
        handlers[method.name] = make(
            getattr(servicer, method.name),
            request_deserializer=_lenient(request),
            response_serializer=response.SerializeToString,
        )
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    server.add_registered_method_handlers(SERVICE, handlers)
