"""The compose observability path is wired end to end, and the dashboard reads real metrics.

gateway --OTLP--> otel-collector --> jaeger (traces) / prometheus exporter (metrics)
prometheus scrapes gateway:9464 and the collector; grafana reads prometheus and jaeger.
Every metric and label the Grafana dashboard queries must exist in the gateway's own
Prometheus registry (llm_gateway_server.telemetry.metrics), so a rename breaks this test,
not the dashboard in production.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

from llm_gateway_server.config import defaults
from llm_gateway_server.telemetry.metrics import GatewayMetrics

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOY = REPO_ROOT / "deploy"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "llm-gateway.json"

#: What the dashboard must show (issue 6): requests, latency, TTFT, tokens, cost, cache,
#: breakers, in-flight, fallbacks and rejections.
REQUIRED_METRICS = frozenset(
    {
        "llm_gateway_requests_total",
        "gen_ai_server_request_duration_seconds_bucket",
        "gen_ai_client_operation_duration_seconds_bucket",
        "gen_ai_server_time_to_first_token_seconds_bucket",
        "gen_ai_client_operation_time_to_first_chunk_seconds_bucket",
        "gen_ai_client_token_usage_sum",
        "llm_gateway_cost_usd_total",
        "llm_gateway_cache_requests_total",
        "llm_gateway_breaker_state",
        "llm_gateway_inflight_requests",
        "llm_gateway_fallbacks_total",
        "llm_gateway_rejections_total",
    }
)
#: Labels Prometheus adds at scrape time, and the histogram bucket label.
SCRAPE_LABELS = frozenset({"job", "instance"})
SAMPLE_SUFFIXES = {
    "counter": ("_total",),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count"),
}

_SELECTOR = re.compile(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{([^}]*)\}")
_MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")
_GATEWAY_NAME = re.compile(r"\b(?:gen_ai|llm_gateway)_[a-z0-9_]+")
_BY = re.compile(r"\bby\s*\(([^)]*)\)")
_LEGEND = re.compile(r"\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}")


def port_of(address: str) -> int:
    """Port of ``host:port`` or ``scheme://host:port[/path]``."""
    return int(address.rsplit(":", 1)[1].split("/", 1)[0])


def host_of(address: str) -> str:
    """Host of ``host:port`` or ``scheme://host:port[/path]``."""
    return address.split("://", 1)[-1].rsplit(":", 1)[0]


def load(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        doc = yaml.safe_load(handle)
    assert isinstance(doc, dict)
    return doc


@pytest.fixture(scope="module")
def exported() -> dict[str, frozenset[str]]:
    """Sample name -> label names, for everything the gateway's registry can export."""
    metrics = GatewayMetrics(latest=True)
    samples: dict[str, frozenset[str]] = {}
    # prometheus_client exposes no public way to read a metric's label names before it has
    # children, so read the collectors' own attribute.
    for collector in list(metrics.registry._collector_to_names):
        assert isinstance(collector, MetricWrapperBase)
        labels = frozenset(collector._labelnames)
        for family in collector.describe():
            for suffix in SAMPLE_SUFFIXES[family.type]:
                samples[family.name + suffix] = labels
    assert samples, "the gateway registry exported nothing"
    return samples


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    doc = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert isinstance(doc, dict)
    return doc


@pytest.fixture(scope="module")
def compose_services() -> dict[str, Any]:
    services: dict[str, Any] = load(REPO_ROOT / "docker-compose.yml")["services"]
    return services


@pytest.fixture(scope="module")
def collector() -> dict[str, Any]:
    return load(DEPLOY / "otel-collector.yaml")


def panel_targets(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [t for p in dashboard["panels"] for t in p.get("targets", [])]


def test_dashboard_queries_only_metrics_and_labels_the_gateway_exports(
    dashboard: dict[str, Any], exported: dict[str, frozenset[str]]
) -> None:
    used: set[str] = set()
    for target in panel_targets(dashboard):
        expr: str = target["expr"]
        names = {name for name, _ in _SELECTOR.findall(expr)}
        unknown = names - exported.keys()
        assert not unknown, f"not exported by the gateway: {unknown} in {expr}"
        used |= names
        all_labels = set().union(*exported.values())
        strays = set(_GATEWAY_NAME.findall(expr)) - exported.keys() - all_labels
        assert not strays, f"neither a metric nor a label: {strays} in {expr}"
        available = set().union(*(exported[n] for n in names)) | SCRAPE_LABELS
        for name, body in _SELECTOR.findall(expr):
            matched = set(_MATCHER.findall(body))
            assert matched <= exported[name] | SCRAPE_LABELS, f"{name}: {matched}"
        for group in _BY.findall(expr):
            labels = {label.strip() for label in group.split(",")}
            assert labels <= available | {"le"}, f"{labels} in {expr}"
        assert set(_LEGEND.findall(target["legendFormat"])) <= available, target["legendFormat"]
    assert used >= REQUIRED_METRICS, f"missing panels for {REQUIRED_METRICS - used}"


def test_dashboard_layout_is_valid(dashboard: dict[str, Any]) -> None:
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    cells: set[tuple[int, int]] = set()
    for panel in dashboard["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        covered = {
            (x, y)
            for x in range(pos["x"], pos["x"] + pos["w"])
            for y in range(pos["y"], pos["y"] + pos["h"])
        }
        assert not covered & cells, f"{panel['title']} overlaps another panel"
        cells |= covered


def test_dashboard_defaults_name_the_provisioned_datasource_and_job(
    dashboard: dict[str, Any],
) -> None:
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    datasources = load(DEPLOY / "grafana" / "provisioning" / "datasources" / "datasources.yaml")
    (prometheus,) = [d for d in datasources["datasources"] if d["type"] == "prometheus"]
    assert variables["datasource"]["current"]["value"] == prometheus["uid"]
    jobs = load(DEPLOY / "prometheus.yml")["scrape_configs"]
    (gateway_job,) = [j for j in jobs if j["static_configs"][0]["targets"] == ["gateway:9464"]]
    assert variables["job"]["current"]["value"] == gateway_job["job_name"]


def test_prometheus_scrapes_the_gateway_side_port_and_the_collector(
    collector: dict[str, Any], compose_services: dict[str, Any]
) -> None:
    jobs = {j["job_name"]: j for j in load(DEPLOY / "prometheus.yml")["scrape_configs"]}
    targets = {t for j in jobs.values() for c in j["static_configs"] for t in c["targets"]}
    assert f"gateway:{port_of(defaults.DEFAULT_METRICS_LISTEN)}" in targets
    assert jobs["llm-gateway"].get("metrics_path", "/metrics") == "/metrics"
    own = collector["service"]["telemetry"]["metrics"]["readers"][0]["pull"]["exporter"]
    exporter = collector["exporters"]["prometheus"]["endpoint"]
    for port in (own["prometheus"]["port"], port_of(exporter)):
        assert f"otel-collector:{port}" in targets
    assert {host_of(t) for t in targets} <= compose_services.keys()


def test_collector_pipelines_are_complete(
    collector: dict[str, Any], compose_services: dict[str, Any]
) -> None:
    pipelines = collector["service"]["pipelines"]
    assert {"traces", "metrics"} <= pipelines.keys()
    for name, pipeline in pipelines.items():
        for section in ("receivers", "processors", "exporters"):
            missing = set(pipeline[section]) - collector[section].keys()
            assert not missing, f"{name} uses undefined {section}: {missing}"
        assert pipeline["processors"][0] == "memory_limiter", name
    for extension in collector["service"]["extensions"]:
        assert extension in collector["extensions"]
    (traces_out,) = pipelines["traces"]["exporters"]
    jaeger = collector["exporters"][traces_out]["endpoint"]
    assert host_of(jaeger) in compose_services and port_of(jaeger) == 4317


def test_grafana_provisioning_matches_the_compose_mounts(
    compose_services: dict[str, Any],
) -> None:
    mounts = {
        v["source"]: v["target"]
        for v in compose_services["grafana"]["volumes"]
        if isinstance(v, dict) and v["type"] == "bind"
    }
    providers = load(DEPLOY / "grafana" / "provisioning" / "dashboards" / "dashboards.yaml")
    (provider,) = providers["providers"]
    assert mounts["./deploy/grafana/dashboards"] == provider["options"]["path"]
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    home = compose_services["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == f"{provider['options']['path']}/{DASHBOARD.name}"
    datasources = load(DEPLOY / "grafana" / "provisioning" / "datasources" / "datasources.yaml")
    for source in datasources["datasources"]:
        assert host_of(source["url"]) in compose_services, source["url"]
