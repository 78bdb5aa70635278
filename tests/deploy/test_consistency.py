"""The deployment files agree with the gateway's code and with each other.

Ports, the config env var, the config path and the health service names are defined once, in
llm_gateway_server.config.defaults; Dockerfile, docker-compose.yml and the deploy/k8s overlays (rendered by kubectl kustomize) repeat
them because those formats cannot import Python. These tests parse the files (no Docker or
cluster needed) and fail when a copy drifts.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
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
OVERLAYS = ("dev", "production")
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
# The HTTP facades' port (OpenAI /v1/*, Ollama /api/*), served where the config sets http.listen.
HTTP_PORT = 8000


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


def render_overlay(overlay: str) -> list[dict[str, Any]]:
    """The manifests of one deploy/k8s overlay, as `kubectl kustomize` renders them."""
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl (with its built-in kustomize) is needed to render deploy/k8s"
    done = subprocess.run(
        [kubectl, "kustomize", str(K8S_DIR / "overlays" / overlay)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


@pytest.fixture(scope="module", params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture(scope="module")
def k8s(overlay: str) -> dict[tuple[str, str], dict[str, Any]]:
    """Every manifest of the overlay, keyed by (kind, name); the generated ConfigMap as named."""
    resources: dict[tuple[str, str], dict[str, Any]] = {}
    for doc in render_overlay(overlay):
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


def check_gateway_config(
    text: str, env: dict[str, str] | None = None
) -> tuple[dict[str, Any], ConfigSnapshot]:
    """Validate a gateway config as the gateway would; return it raw and loaded.

    Shared by the compose config and the Kubernetes ConfigMap's config. Only ``env`` is
    passed (default: none), so cloud providers without a key load as disabled.
    """
    snapshot = parse_config(text, source="deploy", env=env or {})
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


def test_dockerfile_exposes_grpc_http_and_metrics_ports(runtime: list[Instruction]) -> None:
    exposed = {int(w) for ins in runtime if ins.keyword == "EXPOSE" for w in ins.args.split()}
    assert exposed == {GRPC_PORT, HTTP_PORT, METRICS_PORT}


def test_dockerfile_runs_the_console_script_on_the_grpc_port(runtime: list[Instruction]) -> None:
    (entrypoint,) = [ins.exec_form() for ins in runtime if ins.keyword == "ENTRYPOINT"]
    (cmd,) = [ins.exec_form() for ins in runtime if ins.keyword == "CMD"]
    scripts = tomllib.loads((REPO_ROOT / "server" / "pyproject.toml").read_text())["project"]
    assert entrypoint == ["llm-gateway", "serve"]
    assert "llm-gateway" in scripts["scripts"]
    assert port_of(flag_value(cmd, "--listen")) == GRPC_PORT


def test_dockerfile_healthcheck_asks_liveness_through_grpc_health(
    runtime: list[Instruction],
) -> None:
    """Liveness (service ""): a container whose upstreams are down is alive, not unhealthy."""
    argv = healthcheck_argv(runtime)
    assert argv[1] == probe_path_in_image(runtime)
    assert flag_value(argv, "--service") == ""
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
    assert container_ports == {GRPC_PORT, HTTP_PORT, METRICS_PORT}
    assert port_of(flag_value(gateway_service["command"], "--listen")) == GRPC_PORT


def test_compose_healthcheck_is_the_images_probe_asking_liveness(
    gateway_service: dict[str, Any], runtime: list[Instruction]
) -> None:
    """The image's probe script, but for liveness: readiness fails whenever Ollama is down."""
    test = gateway_service["healthcheck"]["test"]
    image = healthcheck_argv(runtime)
    assert test[0] == "CMD"
    assert test[1:3] == image[:2]
    assert flag_value(test, "--target") == flag_value(image, "--target")
    assert flag_value(test, "--service") == defaults.LIVENESS_SERVICE_NAME


def test_compose_collector_health_is_asked_of_its_health_check_extension(
    compose: dict[str, Any],
) -> None:
    (collector,) = load_yaml_documents(REPO_ROOT / "deploy" / "otel-collector.yaml")
    assert "health_check" in collector["service"]["extensions"]
    port = port_of(collector["extensions"]["health_check"]["endpoint"])
    test = compose["services"]["otel-collector-health"]["healthcheck"]["test"]
    (url,) = [word for word in test if word.startswith("http://")]
    assert (host_of(url), port_of(url)) == ("otel-collector", port)


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


def compose_defaults(compose: dict[str, Any]) -> dict[str, str]:
    """The model variables of docker-compose.yml's `x-models`, at their defaults."""
    models: dict[str, str] = compose["x-models"]
    found = {name: re.fullmatch(r"\$\{(\w+):-(.+)\}", value) for name, value in models.items()}
    assert all(match and match.group(1) == name for name, match in found.items()), models
    return {name: match.group(2) for name, match in found.items() if match}


def test_compose_gateway_config_targets_compose_services(compose: dict[str, Any]) -> None:
    services = compose["services"]
    mount = compose["services"]["gateway"]["volumes"][0]
    models = compose_defaults(compose)
    config, snapshot = check_gateway_config((REPO_ROOT / mount["source"]).read_text(), models)
    assert not snapshot.disabled, "the compose config must work with no cloud keys"
    local = config["providers"]["local-ollama"]
    assert local["kind"] == "openai_compatible" and local["locality"] == "local"
    assert host_of(local["api_base"]) == "ollama" and port_of(local["api_base"]) == 11434
    assert host_of(config["state"]["redis_url"]) in services
    # The README's examples call `chat` and `embedding`; both go to the models ollama-pull
    # fetches, which the gateway container gets under the same variable names.
    routes = snapshot.config.routes
    assert {"chat", "embedding"} <= routes.keys()
    routed = {t.model for route in routes.values() for t in route.targets}
    assert routed == set(models.values())
    for service in ("gateway", "ollama-pull"):
        assert compose["x-models"].items() <= services[service]["environment"].items()
    pull = " ".join(services["ollama-pull"]["command"])
    assert all(f'ollama pull "$${name}"' in pull for name in models)


def test_compose_comments_name_only_variables_that_exist(compose: dict[str, Any]) -> None:
    """A variable a comment tells the user to set is one something reads."""
    read: set[str] = set()
    for service in compose["services"].values():
        read |= set(service.get("environment", {}))
    text = (REPO_ROOT / "docker-compose.yml").read_text()
    text += (REPO_ROOT / "deploy" / "compose" / "gateway.yaml").read_text()
    comments = " ".join(line.split("#", 1)[1] for line in text.splitlines() if "#" in line)
    named = set(re.findall(r"\b[A-Z][A-Z0-9]*_[A-Z0-9_]+\b", comments))
    assert named <= read, named - read


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


def container_env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container["env"]}


def stand_in(name: str) -> str:
    """A well-formed value for a variable a Secret would provide."""
    if name.endswith("SHA256"):
        return "ab" * 32
    if name == "REDIS_URL":
        return "redis://redis.llm-gateway.svc:6379/0"
    return "stand-in-value"


def mounted_config(
    k8s: dict[tuple[str, str], dict[str, Any]], container: dict[str, Any], pod_spec: dict[str, Any]
) -> tuple[dict[str, Any], ConfigSnapshot]:
    """The config the pod reads, loaded with the environment the pod gets.

    Variables from Secrets get stand-ins: a `${VAR}` the pod does not set fails the load.
    """
    env = container_env(container)
    (volume,) = [v for v in pod_spec["volumes"] if v["name"] == "config"]
    (item,) = volume["configMap"]["items"]
    configmap = k8s[("ConfigMap", volume["configMap"]["name"])]
    values = {
        name: entry.get("value") or stand_in(name)
        for name, entry in env.items()
        if "value" in entry or "secretKeyRef" in entry.get("valueFrom", {})
    }
    return check_gateway_config(configmap["data"][item["key"]], values)


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
    overlay: str, k8s: dict[tuple[str, str], dict[str, Any]], container: dict[str, Any]
) -> None:
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    expected = {"grpc": GRPC_PORT, "metrics": METRICS_PORT}
    if overlay == "production":
        expected["http"] = HTTP_PORT
    assert ports == expected
    assert port_of(flag_value(container["args"], "--listen")) == GRPC_PORT
    labels = k8s[("Deployment", "llm-gateway")]["spec"]["template"]["metadata"]["labels"]
    for name in ("llm-gateway", "llm-gateway-headless"):
        spec = k8s[("Service", name)]["spec"]
        assert spec["selector"].items() <= labels.items()
        for port in spec["ports"]:
            assert port["port"] == ports[port["targetPort"]], (name, port)
        assert {p["name"] for p in spec["ports"]} >= set(expected) - {"metrics"}
    assert k8s[("Service", "llm-gateway-headless")]["spec"]["clusterIP"] == "None"
    (policy,) = k8s[("NetworkPolicy", "llm-gateway")]["spec"]["ingress"]
    assert {p["port"] for p in policy["ports"]} == set(expected)


def test_k8s_config_comes_from_the_generated_configmap(
    k8s: dict[tuple[str, str], dict[str, Any]],
    container: dict[str, Any],
    pod_spec: dict[str, Any],
    gateway_service: dict[str, Any],
) -> None:
    env = container_env(container)
    path = env[defaults.CONFIG_ENV_VAR]["value"]
    assert path == gateway_service["environment"][defaults.CONFIG_ENV_VAR]
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == "config"]
    assert mount["readOnly"] is True
    (volume,) = [v for v in pod_spec["volumes"] if v["name"] == "config"]
    (item,) = volume["configMap"]["items"]
    assert f"{mount['mountPath']}/{item['path']}" == path
    # A hashed name: a config change is a new ConfigMap, so applying it rolls the pods.
    assert re.fullmatch(r"llm-gateway-config-[a-z0-9]{10}", volume["configMap"]["name"])
    config, _ = mounted_config(k8s, container, pod_spec)
    # Every key a provider reads comes from a Secret, by the same env var name.
    for provider in config["providers"].values():
        if "api_key_env" in provider:
            assert "secretKeyRef" in env[provider["api_key_env"]]["valueFrom"]


def rendered(
    overlay: str,
) -> tuple[dict[tuple[str, str], dict[str, Any]], dict[str, Any], dict[str, Any]]:
    """One overlay's manifests by (kind, name), its pod spec and its gateway container."""
    k8s = {(d["kind"], d["metadata"]["name"]): d for d in render_overlay(overlay)}
    pod_spec: dict[str, Any] = k8s[("Deployment", "llm-gateway")]["spec"]["template"]["spec"]
    (container,) = pod_spec["containers"]
    return k8s, pod_spec, container


def test_k8s_dev_is_one_replica_with_memory_state() -> None:
    k8s, pod_spec, container = rendered("dev")
    _, snapshot = mounted_config(k8s, container, pod_spec)
    assert k8s[("Deployment", "llm-gateway")]["spec"]["replicas"] == 1
    assert snapshot.config.state.redis_url is None
    assert not any(kind in {"HorizontalPodAutoscaler", "PodDisruptionBudget"} for kind, _ in k8s)


def test_k8s_production_has_auth_redis_and_secrets() -> None:
    k8s, pod_spec, container = rendered("production")
    config, snapshot = mounted_config(k8s, container, pod_spec)
    assert snapshot.config.auth.enabled and snapshot.config.auth.keys
    assert snapshot.config.state.redis_url == stand_in("REDIS_URL")
    # The Redis URL and the key digests are read from Secrets, required (not optional).
    env = container_env(container)
    named = set(re.findall(r"\$\{(\w+)\}", yaml.safe_dump(config)))
    assert named >= {"REDIS_URL"}
    for name in named:
        ref = env[name]["valueFrom"]["secretKeyRef"]
        assert not ref.get("optional", False), name


def test_k8s_grace_period_covers_prestop_and_drain(
    k8s: dict[tuple[str, str], dict[str, Any]], container: dict[str, Any], pod_spec: dict[str, Any]
) -> None:
    _, snapshot = mounted_config(k8s, container, pod_spec)
    drain = snapshot.config.server.shutdown_grace_s
    assert drain >= defaults.DEFAULT_SHUTDOWN_GRACE_S
    pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert pod_spec["terminationGracePeriodSeconds"] > pre_stop + drain


def test_k8s_production_hpa_and_pdb_cover_the_deployment() -> None:
    k8s, _, _ = rendered("production")
    deployment = k8s[("Deployment", "llm-gateway")]
    hpa = k8s[("HorizontalPodAutoscaler", "llm-gateway")]["spec"]
    assert hpa["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "llm-gateway",
    }
    assert hpa["minReplicas"] >= 2
    assert deployment["spec"]["replicas"] == hpa["minReplicas"]
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


def test_k8s_minimum_version_is_the_one_validated() -> None:
    """The README's minimum Kubernetes version is the oldest schema deploy-check validates."""
    makefile = (REPO_ROOT / "mk" / "deploy.mk").read_text()
    match = re.search(r"^DEPLOY_K8S_VERSIONS \?= (.+)$", makefile, re.MULTILINE)
    assert match, "DEPLOY_K8S_VERSIONS not found in mk/deploy.mk"
    oldest = min(match.group(1).split(), key=lambda v: tuple(map(int, v.split("."))))
    minor = ".".join(oldest.split(".")[:2])
    for readme in (K8S_DIR / "README.md", REPO_ROOT / "README.md"):
        assert f"Kubernetes {minor} or later" in readme.read_text(), readme


def test_k8s_readme_creates_the_secrets_production_reads() -> None:
    """The install steps create every Secret key a production pod requires."""
    _, _, container = rendered("production")
    readme = (K8S_DIR / "README.md").read_text()
    for entry in container["env"]:
        ref = entry.get("valueFrom", {}).get("secretKeyRef")
        if ref is None:
            continue
        assert f"secret generic {ref['name']}" in readme, ref
        assert f"--from-literal={ref['key']}=" in readme, ref
