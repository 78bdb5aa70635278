"""The ``llm-gateway`` console script: serve, check-config, chat, models."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from llm_gateway_server.config.defaults import CONFIG_ENV_VAR, DEFAULT_LISTEN, SHIPPED_CONFIG_PATH
from llm_gateway_server.config.http import check_listen
from llm_gateway_server.config.loader import ConfigError, ConfigSnapshot, load_config

#: Where ``chat`` and ``models`` connect unless told otherwise.
DEFAULT_TARGET = "localhost:50051"


def _config_path(arg: str | None) -> str:
    return arg or os.environ.get(CONFIG_ENV_VAR) or str(SHIPPED_CONFIG_PATH)


def _print_errors(err: ConfigError) -> int:
    for line in err.errors:
        print(f"{err.source}: {line}", file=sys.stderr)
    return 1


def _serve(args: argparse.Namespace) -> int:
    from llm_gateway_server.preflight import unbindable
    from llm_gateway_server.serve import run

    path = _config_path(args.config)
    try:
        check_listen(args.http_listen or "")
    except ValueError as err:
        print(f"--http-listen: {err}", file=sys.stderr)
        return 2
    try:
        snapshot = load_config(path)
    except ConfigError as err:
        return _print_errors(err)
    taken = unbindable(
        snapshot,
        listen=args.listen,
        workers=args.workers,
        http_listen=args.http_listen,
    )
    for line in taken:
        print(f"llm-gateway: {line}", file=sys.stderr)
    if taken:
        return 1
    try:
        return run(
            snapshot, path, listen=args.listen, workers=args.workers, http_listen=args.http_listen
        )
    except RuntimeError as exc:
        # The preflight's backstop: the port was taken between the check and the bind.
        if "Failed to bind" not in str(exc):
            raise
        address = args.listen or snapshot.config.server.listen
        print(f"llm-gateway: cannot listen on {address}: it is in use", file=sys.stderr)
        return 1


def describe_config(snapshot: ConfigSnapshot) -> list[str]:
    """The resolved routes and disabled providers, as ``check-config`` prints them."""
    cfg = snapshot.config
    lines = [f"config {snapshot.source}: OK", "routes:"]
    for name, route in cfg.routes.items():
        default = " (default for its task)" if cfg.default_route(route.task) == name else ""
        privacy = (route.default_privacy or cfg.server.default_privacy).value
        lines.append(
            f"  {name}: task={route.task.value}{default} privacy={privacy} "
            f"max_privacy={route.max_privacy.value} balancing={route.balancing.value}"
        )
        lists = (("", route.targets), ("flexible ", route.flexible or ()))
        for label, targets in lists:
            for i, target in enumerate(targets):
                provider = cfg.providers[target.provider]
                tier = target.tier if target.tier is not None else i
                state = (
                    f"DISABLED: {snapshot.disabled[target.provider]}"
                    if target.provider in snapshot.disabled
                    else "enabled"
                )
                lines.append(
                    f"    {label}tier {tier} weight {target.weight}: "
                    f"{target.provider}/{target.model} "
                    f"[{provider.kind.value}, {provider.locality.value}] {state}"
                )
    lines.append("providers disabled:" if snapshot.disabled else "providers disabled: none")
    lines.extend(f"  {name}: {why}" for name, why in snapshot.disabled.items())
    return lines


def _check_config(args: argparse.Namespace) -> int:
    try:
        snapshot = load_config(args.path)
    except ConfigError as err:
        return _print_errors(err)
    print("\n".join(describe_config(snapshot)))
    return 0


def _chat(args: argparse.Namespace) -> int:
    from llm_gateway_server.terminal import chat

    prompt = " ".join(args.prompt) if args.prompt else sys.stdin.read()
    return chat(args, prompt)


def _models(args: argparse.Namespace) -> int:
    from llm_gateway_server.terminal import models

    return models(args)


def _client_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--target", default=DEFAULT_TARGET, help="gateway address HOST:PORT")
    parser.add_argument(
        "--api-key",
        default=os.environ.get("LLM_GATEWAY_API_KEY"),
        help="API key (default: $LLM_GATEWAY_API_KEY)",
    )
    parser.add_argument("--timeout", type=float, default=300.0, help="deadline in seconds")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the console script."""
    parser = argparse.ArgumentParser(prog="llm-gateway", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the gateway")
    serve.add_argument(
        "--config",
        help=f"config file (default: ${CONFIG_ENV_VAR}, else the shipped default config)",
    )
    serve.add_argument("--listen", help=f"HOST:PORT (default: server.listen, {DEFAULT_LISTEN})")
    serve.add_argument(
        "--http-listen",
        help='OpenAI/Ollama HTTP facade HOST:PORT, "" turns it off (default: http.listen, off)',
    )
    serve.add_argument("--workers", type=int, default=1, help="server processes (SO_REUSEPORT)")
    serve.set_defaults(func=_serve)

    check = sub.add_parser("check-config", help="validate a config and print the resolved routes")
    check.add_argument("path")
    check.set_defaults(func=_check_config)

    chat = sub.add_parser("chat", help="stream an answer to stdout")
    _client_args(chat)
    chat.add_argument("--model", default="", help="route name or provider/model")
    chat.add_argument("--privacy", choices=["strict", "flexible"])
    chat.add_argument("--system", help="system prompt")
    chat.add_argument("--temperature", type=float)
    chat.add_argument("--max-tokens", type=int)
    chat.add_argument("--show-reasoning", action="store_true", help="print reasoning to stderr")
    chat.add_argument("prompt", nargs="*", help="the prompt (default: read stdin)")
    chat.set_defaults(func=_chat)

    models = sub.add_parser("models", help="list routes and targets")
    _client_args(models)
    models.set_defaults(func=_models)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``llm-gateway`` console script."""
    args = build_parser().parse_args(argv)
    if getattr(args, "workers", 1) < 1:
        print("--workers must be at least 1", file=sys.stderr)
        return 2
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
