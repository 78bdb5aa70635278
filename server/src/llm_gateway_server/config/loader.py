"""Reads, interpolates and validates the config file into an immutable snapshot.

This is the one place that reads the config file and the environment: everything else
reads the ``ConfigSnapshot`` it was handed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from llm_gateway_server.config.diagnostics import (
    UniqueKeyLoader,
    validation_error_lines,
    yaml_error_line,
)
from llm_gateway_server.config.model import GatewayConfig
from llm_gateway_server.config.providers import KEY_REQUIRED_KINDS, ProviderConfig
from llm_gateway_server.core.redaction import PLAIN_HEADERS, secret_forms, url_secrets
from llm_gateway_server.core.types import Locality

#: What the smallest useful config holds, for the errors about an empty one.
_NEEDS = "`providers:` and at least one route under `routes:`"
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class ConfigError(Exception):
    """The config is invalid; ``errors`` has one line per problem, each naming its key."""

    def __init__(self, source: str, errors: list[str]) -> None:
        super().__init__(f"{source}: " + "; ".join(errors))
        self.source = source
        self.errors = errors


@dataclass(frozen=True)
class ConfigSnapshot:
    """A validated config plus what was resolved from the environment at load time."""

    config: GatewayConfig
    source: str
    #: API keys by provider name (never logged).
    api_keys: Mapping[str, str] = field(default_factory=dict, repr=False)
    #: Why a provider cannot be used, by provider name.
    disabled: Mapping[str, str] = field(default_factory=dict)
    #: Increments on each successful reload.
    generation: int = 1

    def provider_enabled(self, name: str) -> bool:
        """True when the provider is configured and not disabled."""
        return name in self.config.providers and name not in self.disabled

    def secrets(self) -> tuple[str, ...]:
        """Every secret value this snapshot holds, in every form it takes on the wire, for
        redaction: API keys, ``providers.*.headers`` values (as interpolated), and
        ``api_base`` userinfo with its ``Basic`` form (see ``core.redaction``)."""
        values = [v for v in self.api_keys.values() if v]
        forms: list[str] = []
        for provider in self.config.providers.values():
            values += [v for k, v in provider.headers.items() if k.lower() not in PLAIN_HEADERS]
            forms += url_secrets(provider.api_base)
        return tuple(dict.fromkeys((*secret_forms(*values), *forms)))


def _interpolate(value: Any, env: Mapping[str, str], path: str, errors: list[str]) -> Any:
    if isinstance(value, str):

        def substitute(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return default
            errors.append(f"{path}: environment variable {name} is not set")
            return ""

        return _ENV_REF.sub(substitute, value)
    if isinstance(value, dict):
        return {
            k: _interpolate(v, env, f"{path}.{k}" if path else str(k), errors)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_interpolate(v, env, f"{path}[{i}]", errors) for i, v in enumerate(value)]
    return value


def _resolve_keys(
    providers: Mapping[str, ProviderConfig], env: Mapping[str, str]
) -> tuple[dict[str, str], dict[str, str]]:
    keys: dict[str, str] = {}
    disabled: dict[str, str] = {}
    for name, provider in providers.items():
        if provider.api_key_env:
            value = env.get(provider.api_key_env, "")
            if value:
                keys[name] = value
            elif provider.kind in KEY_REQUIRED_KINDS or provider.locality is Locality.CLOUD:
                # A local server may take an optional key; a cloud API cannot work without one.
                disabled[name] = f"{provider.api_key_env} is not set"
        elif provider.kind in KEY_REQUIRED_KINDS:
            disabled[name] = f"kind {provider.kind.value} needs api_key_env"
    return keys, disabled


def parse_config(
    text: str,
    *,
    source: str = "<config>",
    env: Mapping[str, str] | None = None,
    generation: int = 1,
) -> ConfigSnapshot:
    """Validate config text; raise ``ConfigError`` listing every problem by key.

    An empty file, or one without routes, is an error too: a file truncated mid-save (an
    editor, a ConfigMap swap) must not be taken as a config in which every call is NOT_FOUND.
    """
    env = os.environ if env is None else env
    try:
        # A SafeLoader (no arbitrary objects) that also refuses duplicate keys.
        raw = yaml.load(text, Loader=UniqueKeyLoader)  # noqa: S506
    except yaml.YAMLError as exc:
        raise ConfigError(source, [yaml_error_line(exc)]) from None
    if raw is None:
        raise ConfigError(source, [f"the file is empty: it needs {_NEEDS}"])
    if not isinstance(raw, dict):
        raise ConfigError(source, ["the top level must be a mapping"])
    errors: list[str] = []
    raw = _interpolate(raw, env, "", errors)
    if errors:
        raise ConfigError(source, errors)
    try:
        config = GatewayConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(source, validation_error_lines(exc, GatewayConfig)) from None
    if not config.routes:
        raise ConfigError(source, [f"routes: none defined; the config needs {_NEEDS}"])
    keys, disabled = _resolve_keys(config.providers, env)
    return ConfigSnapshot(config, source, keys, disabled, generation)


def load_config(
    path: str | Path, *, env: Mapping[str, str] | None = None, generation: int = 1
) -> ConfigSnapshot:
    """Read and validate the config file at ``path``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(path), [f"cannot read: {exc.strerror}"]) from None
    return parse_config(text, source=str(path), env=env, generation=generation)
