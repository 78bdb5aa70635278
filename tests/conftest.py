"""Shared pytest setup: fake upstream fixtures and the event-loop watch for every package."""

pytest_plugins = ["tests.fakes.fixtures", "tests.loop_watch"]
