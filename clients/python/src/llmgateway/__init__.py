"""llm-gateway client: generated stubs and a thin typed client."""
