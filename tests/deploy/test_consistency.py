"""The deployment files agree with the gateway's code and with each other.

Ports, the config env var, the config path and the health service names are defined once, in
llm_gateway_server.config.defaults; Dockerfile, docker-compose.yml and deploy/k8s/*.yaml repeat
them because those formats cannot import Python. These tests parse the files (no Docker or
cluster needed) and fail when a copy drifts.
"""

from __future__ import annotations

import importlib.util
import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from llm_gateway_server.config import defaults
from llm_gateway_server.config.loader import ConfigSnapshot, parse_config

REPO_ROOT = Path(__file__).resolve().parents[2]
K8S_DIR = REPO_ROOT / "deploy" / "k8s"
HEALTH_PROBE_SCRIPT = REPO_ROOT / "deploy" / "docker" / "grpc_health_check.py"
PROVIDER_KINDS = frozenset(
    {"openai_compatible", "ollama", "openai", "anthropic", "gemini", "litellm"}
)


def port_of(address: str) -> int:
    """Port of ``host:port`` or ``scheme://host:port[/path]``."""
    return int(address.rsplit(":", 1)[1].split("/", 1)[0])


def host_of(address: str) -> str:
    """Host of ``host:port`` or ``scheme://host:port[/path]``."""
    return address.split("://", 1)[-1].rsplit(":", 1)[0]


GRPC_PORT = port_of(defaults.DEFAULT_LISTEN)
METRICS_PORT = port_of(defaults.DEFAULT_METRICS_LISTEN)


@dataclass(frozen=True)
class Instruction:
    """One Dockerfile instruction (continuations joined) and the stage it belongs to."""

    keyword: str
    args: str
    stage: str

    def exec_form(self) -> list[str]:
        """The JSON-array (exec) form of the arguments."""
        value = json.loads(self.args)
        assert isinstance(value, list), f"{self.keyword} is not in exec form"
        return [str(item) for item in value]


def parse_dockerfile(text: str) -> list[Instruction]:
    """Split a Dockerfile into instructions; comments dropped, ``\\`` continuations joined."""
    instructions: list[Instruction] = []
    stage, pending = "", ""
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#") or (not line and not pending):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, args = (pending + line).strip().partition(" ")
        pending = ""
        args = " ".join(args.split())
        if keyword.upper() == "FROM":
            words = args.split()
            stage = words[-1] if len(words) >= 3 and words[-2].upper() == "AS" else words[0]
        instructions.append(Instruction(keyword.upper(), args, stage))
    return instructions


def load_yaml_documents(path: Path) -> list[dict[str, Any]]:
    """Every non-empty YAML document in ``path``."""
    with path.open(encoding="utf-8") as handle:
        return [doc for doc in yaml.safe_load_all(handle) if doc]


def flag_value(argv: list[str], flag: str) -> str:
    """The value following ``flag`` in an argument vector."""
    assert flag in argv, f"{flag} missing from {argv}"
    return argv[argv.index(flag) + 1]


@pytest.fixture(scope="module")
def dockerfile() -> list[Instruction]:
    return parse_dockerfile((REPO_ROOT / "Dockerfile").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def runtime(dockerfile: list[Instruction]) -> list[Instruction]:
    """Instructions of the final (runtime) stage."""
    final = dockerfile[-1].stage
    return [ins for ins in dockerfile if ins.stage == final]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    (doc,) = load_yaml_documents(REPO_ROOT / "docker-compose.yml")
    return doc


@pytest.fixture(scope="module")
def gateway_service(compose: dict[str, Any]) -> dict[str, Any]:
    service: dict[str, Any] = compose["services"]["gateway"]
    return service


@pytest.fixture(scope="module")
def k8s() -> dict[tuple[str, str], dict[str, Any]]:
    """Every manifest under deploy/k8s, keyed by (kind, name)."""
    resources: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(K8S_DIR.glob("*.yaml")):
        for doc in load_yaml_documents(path):
            key = (doc["kind"], doc["metadata"]["name"])
            assert key not in resources, f"{key} defined twice"
            resources[key] = doc
    return resources


@pytest.fixture(scope="module")
def pod_spec(k8s: dict[tuple[str, str], dict[str, Any]]) -> dict[str, Any]:
    spec: dict[str, Any] = k8s[("Deployment", "llm-gateway")]["spec"]["template"]["spec"]
    return spec


@pytest.fixture(scope="module")
def container(pod_spec: dict[str, Any]) -> dict[str, Any]:
    (only,) = pod_spec["containers"]
    assert isinstance(only, dict)
    return only


def healthcheck_argv(runtime: list[Instruction]) -> list[str]:
    (check,) = [ins for ins in runtime if ins.keyword == "HEALTHCHECK"]
    _, _, command = check.args.partition(" CMD ")
    return json.loads(command)  # type: ignore[no-any-return]


def probe_path_in_image(runtime: list[Instruction]) -> str:
    copies = [ins.args.split() for ins in runtime if ins.keyword == "COPY"]
    (dest,) = [words[-1] for words in copies if words[-2].endswith(HEALTH_PROBE_SCRIPT.name)]
    return dest


def check_gateway_config(text: str) -> tuple[dict[str, Any], ConfigSnapshot]:
    """Validate a gateway config as the gateway would; return it raw and loaded.

    Shared by the compose config and the Kubernetes ConfigMap's config. No environment is
    passed, so cloud providers load as disabled (no key) rather than failing.
    """
    snapshot = parse_config(text, source="deploy", env={})
    config: dict[str, Any] = yaml.safe_load(text)
    providers: dict[str, dict[str, Any]] = config["providers"]
    kinds = {name: provider["kind"] for name, provider in providers.items()}
    assert set(kinds.values()) <= PROVIDER_KINDS, kinds
    for route in config["routes"].values():
        for target in route["targets"]:
            assert target["provider"] in providers, target
    assert port_of(config["telemetry"]["metrics_listen"]) == METRICS_PORT
    return config, snapshot


# ---------------------------------------------------------------------------- Dockerfile


def test_dockerfile_exposes_grpc_and_metrics_ports(runtime: list[Instruction]) -> None:
    exposed = {int(w) for ins in runtime if ins.keyword == "EXPOSE" for w in ins.args.split()}
    assert exposed == {GRPC_PORT, METRICS_PORT}


def test_dockerfile_runs_the_console_script_on_the_grpc_port(runtime: list[Instruction]) -> None:
    (entrypoint,) = [ins.exec_form() for ins in runtime if ins.keyword == "ENTRYPOINT"]
    (cmd,) = [ins.exec_form() for ins in runtime if ins.keyword == "CMD"]
    scripts = tomllib.loads((REPO_ROOT / "server" / "pyproject.toml").read_text())["project"]
    assert entrypoint == ["llm-gateway", "serve"]
    assert "llm-gateway" in scripts["scripts"]
    assert port_of(flag_value(cmd, "--listen")) == GRPC_PORT


def test_dockerfile_healthcheck_asks_readiness_through_grpc_health(
    runtime: list[Instruction],
) -> None:
    argv = healthcheck_argv(runtime)
    assert argv[1] == probe_path_in_image(runtime)
    assert flag_value(argv, "--service") == defaults.GATEWAY_SERVICE_NAME
    assert port_of(flag_value(argv, "--target")) == GRPC_PORT


def test_health_probe_defaults_match_the_code() -> None:
    spec = importlib.util.spec_from_file_location("grpc_health_check", HEALTH_PROBE_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.DEFAULT_SERVICE == defaults.GATEWAY_SERVICE_NAME
    assert port_of(module.DEFAULT_TARGET) == GRPC_PORT


def test_dockerfile_is_slim_non_root_and_locked(
    dockerfile: list[Instruction], runtime: list[Instruction]
) -> None:
    bases = {ins.args.split()[0] for ins in dockerfile if ins.keyword == "FROM"}
    assert bases == {"python:3.11-slim"}
    (user,) = [ins.args for ins in runtime if ins.keyword == "USER"]
    assert user.split(":")[0] not in {"0", "root"}
    runs = " ".join(ins.args for ins in dockerfile if ins.keyword == "RUN")
    assert "--require-hashes" in runs
    assert "uv sync --frozen --no-dev" in runs
    uv_reqs = (REPO_ROOT / "requirements" / "bootstrap.txt").read_text()
    assert re.search(r"^uv==[\d.]+ \\\n\s+--hash=sha256:", uv_reqs, re.MULTILINE)


def test_dockerignore_admits_every_copied_path(dockerfile: list[Instruction]) -> None:
    rules = (REPO_ROOT / ".dockerignore").read_text().splitlines()
    assert rules[rules.index("*")] == "*", "the ignore file should be an allow-list"
    allowed = [rule[1:].rstrip("/") for rule in rules if rule.startswith("!")]
    for ins in dockerfile:
        words = [w for w in ins.args.split() if not w.startswith("--")]
        if ins.keyword != "COPY" or "--from" in ins.args:
            continue
        for source in words[:-1]:
            source = source.rstrip("/")
            assert (REPO_ROOT / source).exists(), source
            assert any(source == a or source.startswith(a + "/") for a in allowed), source


# -------------------------------------------------------------------------- compose


def test_compose_mounts_the_config_where_the_env_var_points(
    gateway_service: dict[str, Any],
) -> None:
    path = gateway_service["environment"][defaults.CONFIG_ENV_VAR]
    (mount,) = [v for v in gateway_service["volumes"] if v["target"] == path]
    assert mount["type"] == "bind" and mount["read_only"] is True
    assert (REPO_ROOT / mount["source"]).is_file()


def test_compose_gateway_ports_and_listen_address(gateway_service: dict[str, Any]) -> None:
    container_ports = {int(p.rsplit(":", 1)[1]) for p in gateway_service["ports"]}
    assert container_ports == {GRPC_PORT, METRICS_PORT}
    assert port_of(flag_value(gateway_service["command"], "--listen")) == GRPC_PORT


def test_compose_healthcheck_is_the_images(
    gateway_service: dict[str, Any], runtime: list[Instruction]
) -> None:
    test = gateway_service["healthcheck"]["test"]
    assert test[0] == "CMD"
    assert test[1:] == healthcheck_argv(runtime)


def test_compose_depends_on_conditions_can_be_met(compose: dict[str, Any]) -> None:
    services: dict[str, dict[str, Any]] = compose["services"]
    for name, service in services.items():
        for dep, rule in service.get("depends_on", {}).items():
            assert dep in services, f"{name} depends on unknown {dep}"
            if rule["condition"] == "service_healthy":
                assert "healthcheck" in services[dep], f"{dep} has no healthcheck"
            if rule["condition"] == "service_completed_successfully":
                assert services[dep].get("restart") == "no", f"{dep} must be one-shot"


def test_compose_bind_mount_sources_exist(compose: dict[str, Any]) -> None:
    for service in compose["services"].values():
        for volume in service.get("volumes", []):
            if isinstance(volume, dict) and volume["type"] == "bind":
                assert (REPO_ROOT / volume["source"]).exists(), volume["source"]


def test_compose_gateway_config_targets_compose_services(compose: dict[str, Any]) -> None:
    services = compose["services"]
    mount = compose["services"]["gateway"]["volumes"][0]
    config, snapshot = check_gateway_config((REPO_ROOT / mount["source"]).read_text())
    assert not snapshot.disabled, "the compose config must work with no cloud keys"
    local = config["providers"]["local-ollama"]
    assert local["kind"] == "openai_compatible" and local["locality"] == "local"
    assert host_of(local["api_base"]) == "ollama" and port_of(local["api_base"]) == 11434
    assert host_of(config["state"]["redis_url"]) in services
    # The model the gateway routes to is the one ollama-pull fetches on first start.
    pulled = services["ollama-pull"]["command"][-1]
    models = {t["model"] for r in config["routes"].values() for t in r["targets"]}
    assert models == {pulled}


def test_compose_sends_otlp_to_the_collector(
    compose: dict[str, Any], gateway_service: dict[str, Any]
) -> None:
    env = gateway_service["environment"]
    assert env["OTEL_SERVICE_NAME"] == "llm-gateway"
    endpoint = env["OTEL_EXPORTER_OTLP_ENDPOINT"]
    assert host_of(endpoint) in compose["services"]
    (collector,) = load_yaml_documents(REPO_ROOT / "deploy" / "otel-collector.yaml")
    grpc_in = collector["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"]
    assert port_of(endpoint) == port_of(grpc_in)


# ------------------------------------------------------------------------ Kubernetes


def test_k8s_probes_use_the_grpc_health_service_names(container: dict[str, Any]) -> None:
    for probe in ("startupProbe", "livenessProbe"):
        assert container[probe]["grpc"] == {
            "port": GRPC_PORT,
            "service": defaults.LIVENESS_SERVICE_NAME,
        }
    assert container["readinessProbe"]["grpc"] == {
        "port": GRPC_PORT,
        "service": defaults.GATEWAY_SERVICE_NAME,
    }


def test_k8s_ports_and_services_line_up(
    k8s: dict[tuple[str, str], dict[str, Any]], container: dict[str, Any]
) -> None:
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"grpc": GRPC_PORT, "metrics": METRICS_PORT}
    assert port_of(flag_value(container["args"], "--listen")) == GRPC_PORT
    labels = k8s[("Deployment", "llm-gateway")]["spec"]["template"]["metadata"]["labels"]
    for name in ("llm-gateway", "llm-gateway-headless"):
        spec = k8s[("Service", name)]["spec"]
        assert spec["selector"].items() <= labels.items()
        grpc = next(p for p in spec["ports"] if p["name"] == "grpc")
        assert (grpc["port"], grpc["targetPort"]) == (GRPC_PORT, "grpc")
    assert k8s[("Service", "llm-gateway-headless")]["spec"]["clusterIP"] == "None"


def test_k8s_config_comes_from_the_configmap(
    k8s: dict[tuple[str, str], dict[str, Any]],
    container: dict[str, Any],
    pod_spec: dict[str, Any],
    gateway_service: dict[str, Any],
) -> None:
    env = {e["name"]: e for e in container["env"]}
    path = env[defaults.CONFIG_ENV_VAR]["value"]
    assert path == gateway_service["environment"][defaults.CONFIG_ENV_VAR]
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == "config"]
    assert mount["readOnly"] is True
    (volume,) = [v for v in pod_spec["volumes"] if v["name"] == "config"]
    (item,) = volume["configMap"]["items"]
    assert f"{mount['mountPath']}/{item['path']}" == path
    configmap = k8s[("ConfigMap", volume["configMap"]["name"])]
    config, _ = check_gateway_config(configmap["data"][item["key"]])
    # Every key a provider reads comes from the Secret, by the same env var name.
    for provider in config["providers"].values():
        if "api_key_env" in provider:
            assert "secretKeyRef" in env[provider["api_key_env"]]["valueFrom"]


def test_k8s_pod_is_locked_down_as_the_image_user(
    container: dict[str, Any], pod_spec: dict[str, Any], runtime: list[Instruction]
) -> None:
    (user,) = [ins.args for ins in runtime if ins.keyword == "USER"]
    uid, gid = (int(part) for part in user.split(":"))
    context = container["securityContext"]
    assert context["runAsNonRoot"] is True and context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"]["drop"] == ["ALL"]
    assert (context["runAsUser"], context["runAsGroup"]) == (uid, gid)
    assert pod_spec["securityContext"]["runAsUser"] == uid
    # A read-only root still needs a writable /tmp.
    tmp = next(m for m in container["volumeMounts"] if m["mountPath"] == "/tmp")
    assert any(v["name"] == tmp["name"] and "emptyDir" in v for v in pod_spec["volumes"])


def test_k8s_grace_period_covers_prestop_and_drain(
    k8s: dict[tuple[str, str], dict[str, Any]], container: dict[str, Any], pod_spec: dict[str, Any]
) -> None:
    _, snapshot = check_gateway_config(
        k8s[("ConfigMap", "llm-gateway-config")]["data"]["config.yaml"]
    )
    drain = snapshot.config.server.shutdown_grace_s
    assert drain >= defaults.DEFAULT_SHUTDOWN_GRACE_S
    pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert pod_spec["terminationGracePeriodSeconds"] > pre_stop + drain


def test_k8s_hpa_and_pdb_cover_the_deployment(k8s: dict[tuple[str, str], dict[str, Any]]) -> None:
    deployment = k8s[("Deployment", "llm-gateway")]
    hpa = k8s[("HorizontalPodAutoscaler", "llm-gateway")]["spec"]
    assert hpa["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "llm-gateway",
    }
    assert hpa["minReplicas"] >= 2
    pdb = k8s[("PodDisruptionBudget", "llm-gateway")]["spec"]
    assert pdb["selector"] == deployment["spec"]["selector"]
    assert pdb.get("maxUnavailable", 0) >= 1 or pdb["minAvailable"] < hpa["minReplicas"]


def test_k8s_resources_share_the_namespace(k8s: dict[tuple[str, str], dict[str, Any]]) -> None:
    (namespace,) = [name for kind, name in k8s if kind == "Namespace"]
    for (kind, name), doc in k8s.items():
        if kind != "Namespace":
            assert doc["metadata"].get("namespace") == namespace, (kind, name)


def test_k8s_readme_explains_grpc_load_balancing(
    k8s: dict[tuple[str, str], dict[str, Any]],
) -> None:
    readme = (K8S_DIR / "README.md").read_text()
    assert f"dns:///llm-gateway-headless:{GRPC_PORT}" in readme
    assert "round_robin" in readme and "Envoy" in readme
    assert ("Service", "llm-gateway-headless") in k8s
