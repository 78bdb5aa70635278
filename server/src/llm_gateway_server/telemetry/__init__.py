"""Telemetry layer of llm-gateway."""
