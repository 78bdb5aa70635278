"""Defaults shared by the code, the CLI, the deployment files and their consistency test."""

from __future__ import annotations

from pathlib import Path

#: gRPC listen address when neither ``--listen`` nor the config sets one.
DEFAULT_LISTEN = "0.0.0.0:50051"
#: Prometheus scrape endpoint (``telemetry.metrics_listen``); ``""`` turns it off.
DEFAULT_METRICS_LISTEN = "0.0.0.0:9464"
#: Environment variable naming the config file for ``llm-gateway serve``.
CONFIG_ENV_VAR = "LLM_GATEWAY_CONFIG"
#: Fully-qualified gRPC service name; also the readiness name in grpc.health.v1.
GATEWAY_SERVICE_NAME = "llmgateway.v1.GatewayService"
#: Liveness name in grpc.health.v1 (the empty string means "the whole server").
LIVENESS_SERVICE_NAME = ""
#: Seconds in-flight calls get to finish after SIGTERM.
DEFAULT_SHUTDOWN_GRACE_S = 30.0
#: The config the package ships; used when no path is given.
SHIPPED_CONFIG_PATH = Path(__file__).with_name("default.yaml")
