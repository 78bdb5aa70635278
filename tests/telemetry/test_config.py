"""The telemetry config section validates what it is given."""

from __future__ import annotations

import pydantic
import pytest

from llm_gateway_server.config.telemetry import LogFormat, TelemetryConfig


def test_defaults_serve_metrics_and_log_json() -> None:
    config = TelemetryConfig()
    assert config.metrics_listen == "0.0.0.0:9464"
    assert config.log_format is LogFormat.JSON
    assert config.log_level == "INFO"
    assert config.record_content is False


@pytest.mark.parametrize("listen", ["", "127.0.0.1:0", "[::]:9464", "metrics.local:9100"])
def test_accepts_host_port_or_empty(listen: str) -> None:
    assert TelemetryConfig(metrics_listen=listen).metrics_listen == listen


@pytest.mark.parametrize("listen", ["9464", ":9464", "host:port", "host:70000"])
def test_rejects_malformed_listen(listen: str) -> None:
    with pytest.raises(pydantic.ValidationError, match="HOST:PORT"):
        TelemetryConfig(metrics_listen=listen)


def test_log_level_is_normalised_and_checked() -> None:
    assert TelemetryConfig(log_level="debug").log_level == "DEBUG"
    with pytest.raises(pydantic.ValidationError, match="unknown log level"):
        TelemetryConfig(log_level="LOUD")
