"""The benchmark harness behind `make bench` (not a test: see bench/README.md)."""
