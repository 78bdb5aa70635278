"""Providers layer of llm-gateway."""
