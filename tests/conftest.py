"""Shared pytest setup: fake upstream fixtures for every test package."""

pytest_plugins = ["tests.fakes.fixtures"]
