"""``providers:`` entries validate per kind: unknown keys and options a kind cannot honour
are load errors that name the key."""

from __future__ import annotations

import pytest

from llm_gateway_server.config.loader import ConfigError, parse_config
from llm_gateway_server.config.providers import (
    LiteLLMProviderConfig,
    NativeProviderConfig,
    ProviderConfig,
)


def load(provider: str) -> ProviderConfig:
    # A config needs a route; this one names the provider under test.
    text = (
        f"providers:\n  p: {provider}\nroutes:\n  chat: {{targets: [{{provider: p, model: m}}]}}\n"
    )
    return parse_config(text, env={"KEY": "secret-value"}).config.providers["p"]


def errors(provider: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(provider)
    return info.value.errors


def test_each_kind_loads_as_its_own_config_type() -> None:
    native = load("{kind: openai_compatible, api_base: 'http://h/v1', stream_unary: true}")
    assert isinstance(native, NativeProviderConfig)
    assert native.native and native.stream_unary
    cloud = load("{kind: anthropic, api_key_env: KEY, extra_body: {top_k: 5}}")
    assert isinstance(cloud, LiteLLMProviderConfig)
    assert not cloud.native
    assert cloud.extra_body == {"top_k": 5}  # honoured: passed to LiteLLM
    assert cloud.connect_timeout_s == NativeProviderConfig.model_fields["connect_timeout_s"].default


@pytest.mark.parametrize(
    "option",
    [
        "stream_unary: true",
        "connect_timeout_s: 2",
        "max_connections: 8",
        "max_event_bytes: 4096",
    ],
)
@pytest.mark.parametrize("kind", ["ollama", "anthropic", "gemini", "litellm"])
def test_an_option_a_litellm_kind_cannot_honour_is_refused_by_name(kind: str, option: str) -> None:
    key = option.split(":")[0]
    lines = errors(f"{{kind: {kind}, api_key_env: KEY, {option}}}")
    assert len(lines) == 1
    assert lines[0].startswith(f"providers.p.{key}: not supported by the LiteLLM kinds")


def test_unknown_keys_are_refused_for_every_kind() -> None:
    assert errors("{kind: gemini, api_key_env: KEY, temperature: 0.2}") == [
        "providers.p.temperature: unknown key"
    ]
    assert errors("{kind: openai, api_key_env: KEY, stream_unray: true}") == [
        "providers.p.stream_unray: unknown key (did you mean stream_unary?)"
    ]


def test_field_errors_name_the_key_without_the_kind_tag() -> None:
    assert errors("{kind: ollama, timeout_s: soon}") == [
        "providers.p.timeout_s: Input should be a valid number, unable to parse string as a number"
    ]
    assert errors("{kind: teapot}")[0].startswith("providers.p.kind: Input should be")


def test_credentials_in_api_base_and_api_key_env_contradict() -> None:
    lines = errors("{kind: openai_compatible, api_base: 'http://user:pw@h/v1', api_key_env: KEY}")
    assert len(lines) == 1
    assert "api_base" in lines[0] and "api_key_env" in lines[0]
    assert "pw" not in lines[0]  # the message never repeats the credential
    assert load("{kind: openai_compatible, api_base: 'http://user:pw@h/v1'}").api_base


def test_header_values_with_line_breaks_are_refused_at_load() -> None:
    # A ${VAR} read from a file often ends in a newline: it would split the upstream request.
    (line,) = errors(
        "{kind: openai_compatible, api_base: 'http://h/v1', headers: {X-K: \"a\\nb\"}}"
    )
    assert line.startswith("providers.p.headers")
    assert "CR, LF and NUL are not allowed" in line
