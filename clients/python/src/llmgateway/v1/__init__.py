"""Generated from proto/llmgateway/v1 by `make proto`; do not edit."""
