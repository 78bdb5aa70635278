"""`.env.example` lists every variable the shipped configs and deployment files read, and no other."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIGS = [
    *sorted((REPO_ROOT / "configs").glob("*.yaml")),
    REPO_ROOT / "server" / "src" / "llm_gateway_server" / "config" / "default.yaml",
    REPO_ROOT / "deploy" / "compose" / "gateway.yaml",
    REPO_ROOT / "deploy" / "k8s" / "base" / "config.yaml",
    REPO_ROOT / "deploy" / "k8s" / "overlays" / "production" / "config.yaml",
]
# Read by the gateway process itself (server/src), not through a config file.
PROCESS = {"LLM_GATEWAY_CONFIG", "LLM_GATEWAY_UVLOOP", "LLM_GATEWAY_API_KEY"}
# The OpenTelemetry SDK's standard variables that the compose file and the Deployment set.
OTEL = {
    "OTEL_SERVICE_NAME",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_RESOURCE_ATTRIBUTES",
}


def listed() -> set[str]:
    text = (REPO_ROOT / ".env.example").read_text()
    return set(re.findall(r"^([A-Z][A-Z0-9_]*)=", text, re.MULTILINE))


def read_by_configs() -> set[str]:
    names: set[str] = set()
    for path in CONFIGS:
        text = path.read_text()
        names |= set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", text))
        names |= set(re.findall(r"^\s*api_key_env:\s*\"?([A-Z][A-Z0-9_]*)", text, re.MULTILINE))
    compose = (REPO_ROOT / "docker-compose.yml").read_text()
    return names | set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", compose))


def read_by_the_server() -> set[str]:
    source = " ".join(p.read_text() for p in (REPO_ROOT / "server" / "src").rglob("*.py"))
    return set(re.findall(r"\bLLM_GATEWAY_[A-Z_]+\b", source))


def test_env_example_lists_every_variable_read() -> None:
    expected = read_by_configs() | read_by_the_server() | OTEL
    assert expected - listed() == set(), "missing from .env.example"


def test_env_example_lists_nothing_unread() -> None:
    expected = read_by_configs() | read_by_the_server() | OTEL
    assert listed() - expected == set(), "in .env.example but read by nothing"


def test_the_process_variables_are_the_servers() -> None:
    assert read_by_the_server() == PROCESS


def test_compose_otel_variables_are_the_listed_ones() -> None:
    compose = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
    otel = {
        name for name in compose["services"]["gateway"]["environment"] if name.startswith("OTEL_")
    }
    assert otel == OTEL
