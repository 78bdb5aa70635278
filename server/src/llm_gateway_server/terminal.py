"""Terminal clients behind ``llm-gateway chat`` and ``llm-gateway models``."""

from __future__ import annotations

import argparse
import sys

import grpc

from llmgateway.v1 import chat_pb2, common_pb2, gateway_service_pb2_grpc, models_pb2

_PRIVACY = {"strict": common_pb2.PRIVACY_STRICT, "flexible": common_pb2.PRIVACY_FLEXIBLE}


def _metadata(args: argparse.Namespace) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {args.api_key}"),) if args.api_key else ()


def _fail(err: grpc.RpcError) -> int:
    code = err.code() if isinstance(err, grpc.Call) else None
    details = err.details() if isinstance(err, grpc.Call) else str(err)
    print(f"llm-gateway: {code.name if code else 'ERROR'}: {details}", file=sys.stderr)
    return 1


def chat(args: argparse.Namespace, prompt: str) -> int:
    """Stream the answer to ``prompt`` to stdout (reasoning to stderr with --show-reasoning)."""
    messages = []
    if args.system:
        messages.append(chat_pb2.Message(role=chat_pb2.ROLE_SYSTEM, content=args.system))
    messages.append(chat_pb2.Message(role=chat_pb2.ROLE_USER, content=prompt))
    request = chat_pb2.StreamChatRequest(model=args.model, messages=messages)
    if args.privacy:
        request.privacy = _PRIVACY[args.privacy]
    if args.temperature is not None:
        request.temperature = args.temperature
    if args.max_tokens is not None:
        request.max_tokens = args.max_tokens
    with grpc.insecure_channel(args.target) as channel:
        stub = gateway_service_pb2_grpc.GatewayServiceStub(channel)
        try:
            for message in stub.StreamChat(request, timeout=args.timeout, metadata=_metadata(args)):
                if message.HasField("delta"):
                    if args.show_reasoning and message.delta.reasoning_content:
                        print(message.delta.reasoning_content, end="", file=sys.stderr, flush=True)
                    print(message.delta.content, end="", flush=True)
                else:
                    summary = message.summary
                    reason = chat_pb2.FinishReason.Name(summary.finish_reason)
                    print(
                        f"\n[{summary.provider}/{summary.model} via {summary.route}: {reason}, "
                        f"{summary.usage.prompt_tokens}+{summary.usage.completion_tokens} tokens"
                        f"{', cached' if summary.cached else ''}]",
                        file=sys.stderr,
                    )
        except grpc.RpcError as err:
            print(file=sys.stderr)
            return _fail(err)
    return 0


def models(args: argparse.Namespace) -> int:
    """Print the routes and targets the caller may use."""
    with grpc.insecure_channel(args.target) as channel:
        stub = gateway_service_pb2_grpc.GatewayServiceStub(channel)
        try:
            response = stub.ListModels(
                models_pb2.ListModelsRequest(), timeout=args.timeout, metadata=_metadata(args)
            )
        except grpc.RpcError as err:
            return _fail(err)
    for route in response.routes:
        task = common_pb2.Task.Name(route.task).removeprefix("TASK_").lower()
        flag = "" if route.available else "  (unavailable)"
        print(f"{route.name}  task={task}{' default' if route.default_for_task else ''}{flag}")
        for target in route.targets:
            where = common_pb2.Locality.Name(target.locality).removeprefix("LOCALITY_").lower()
            ok = "up" if target.available else "down"
            why = f" ({target.unavailable_reason})" if target.unavailable_reason else ""
            print(f"  tier {target.tier}  {target.provider}/{target.model}  {where}  {ok}{why}")
    return 0
