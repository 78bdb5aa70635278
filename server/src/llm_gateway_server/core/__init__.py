"""Core layer of llm-gateway."""
