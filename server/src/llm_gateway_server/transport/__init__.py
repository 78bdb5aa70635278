"""Transport layer of llm-gateway."""
