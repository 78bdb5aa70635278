"""HTTP transport: the OpenAI (/v1/*) and Ollama (/api/*) facades over the same core."""
