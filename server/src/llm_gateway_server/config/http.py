"""The ``http:`` section: the OpenAI- and Ollama-compatible HTTP facade."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, field_validator


def check_listen(value: str) -> str:
    """``value`` if it is ``HOST:PORT`` or empty (off); raises ValueError otherwise."""
    if not value:
        return value
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"must be HOST:PORT or empty, got {value!r}")
    return value


class HttpConfig(BaseModel):
    """Where the HTTP facade listens; off unless ``listen`` is set (or ``--http-listen``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    #: ``HOST:PORT``; ``""`` (the default) serves no HTTP, so two gateways on one machine
    #: never collide on a port nobody asked for.
    listen: str = ""

    @field_validator("listen")
    @classmethod
    def _check_listen(cls, value: str) -> str:
        return check_listen(value)
