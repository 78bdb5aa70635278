"""The ``server:`` section: listening, limits on requests, shutdown, TLS."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from llm_gateway_server.config.defaults import DEFAULT_LISTEN, DEFAULT_SHUTDOWN_GRACE_S
from llm_gateway_server.config.routes import PrivacySetting

_Strict = ConfigDict(extra="forbid", frozen=True)


class TlsConfig(BaseModel):
    """TLS on the gRPC port; with ``client_ca_file``, mutual TLS (client certs required)."""

    model_config = _Strict
    cert_file: str
    key_file: str
    client_ca_file: str | None = None


class ServerConfig(BaseModel):
    """How the gRPC server listens and what it accepts."""

    model_config = _Strict
    #: ``HOST:PORT``; ``--listen`` overrides it.
    listen: str = DEFAULT_LISTEN
    #: Largest request message accepted, bytes (gRPC max receive size).
    max_message_bytes: int = Field(default=16 * 1024 * 1024, gt=0)
    #: Largest inline image accepted, bytes.
    max_image_bytes: int = Field(default=10 * 1024 * 1024, gt=0)
    #: Seconds in-flight calls get to finish after SIGTERM.
    shutdown_grace_s: float = Field(default=DEFAULT_SHUTDOWN_GRACE_S, ge=0)
    #: Seconds between turning health NOT_SERVING (and refusing new calls with UNAVAILABLE)
    #: and closing the port, so load balancers and probes see the change first.
    drain_delay_s: float = Field(default=1.0, ge=0)
    #: Accept ``provider/model`` in ``model`` besides route names.
    allow_direct_targets: bool = False
    #: Direct targets whose breaker and statistics are kept at most (least recently used
    #: first out), so callers naming arbitrary models cannot grow the gateway's memory.
    max_direct_targets: int = Field(default=256, ge=1)
    #: Privacy for requests, routes and keys that set none.
    default_privacy: PrivacySetting = PrivacySetting.STRICT
    #: Deadline applied when the caller sets none, seconds.
    default_deadline_s: float = Field(default=300.0, gt=0)
    #: Longest call the server allows, seconds (a caller's longer deadline is cut to it);
    #: default: ``default_deadline_s``. Connection-age grace covers it, so the server's own
    #: connection management never cuts a call it accepted.
    max_call_s: float | None = Field(default=None, gt=0)
    #: Distinct callers given their own metric label and stats row per replica; later
    #: ones are counted as ``other``.
    max_caller_labels: int = Field(default=100, gt=0)
    #: Distinct routes and models (direct ``provider/model`` targets included) given their
    #: own metric labels per replica; later ones are labelled ``other``.
    max_target_labels: int = Field(default=200, gt=0)
    #: Re-read the config when the file changes (SIGHUP always does).
    watch_config: bool = False
    #: Seconds after which a client connection is asked to reconnect (GOAWAY), so clients
    #: balancing over a headless Service pick up new replicas; 0 turns it off.
    max_connection_age_s: float = Field(default=300.0, ge=0)
    tls: TlsConfig | None = None

    @property
    def longest_call_s(self) -> float:
        """The longest call the server allows, seconds."""
        return max(self.max_call_s or 0.0, self.default_deadline_s)

    @field_validator("listen")
    @classmethod
    def _check_listen(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError(f"must be HOST:PORT, got {value!r}")
        return value
