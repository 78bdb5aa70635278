"""Routing layer of llm-gateway."""
