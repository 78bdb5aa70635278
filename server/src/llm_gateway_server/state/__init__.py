"""State layer of llm-gateway."""
