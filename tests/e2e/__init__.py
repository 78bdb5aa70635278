"""End-to-end tests against real servers (llama.cpp llama-server)."""
