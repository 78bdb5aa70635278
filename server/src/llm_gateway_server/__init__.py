"""llm-gateway: one gRPC service in front of local and cloud LLM providers."""
