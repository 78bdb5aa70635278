"""Composition root: builds the server from a config snapshot, runs it, reloads it, stops it.

The only place where providers, routing, state, telemetry and transport meet; everything
is passed in through constructors, nothing is a global.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection

from llm_gateway_server.config.defaults import GATEWAY_SERVICE_NAME, LIVENESS_SERVICE_NAME
from llm_gateway_server.config.loader import ConfigError, ConfigSnapshot, load_config
from llm_gateway_server.config.server import ServerConfig, TlsConfig
from llm_gateway_server.gateway import Gateway
from llm_gateway_server.pipeline import CallPipeline
from llm_gateway_server.providers.base import Provider
from llm_gateway_server.providers.registry import build_provider
from llm_gateway_server.routing.router import Router
from llm_gateway_server.state import GatewayState, build_state
from llm_gateway_server.telemetry.setup import Telemetry, setup_telemetry
from llm_gateway_server.transport.grpc import handlers
from llm_gateway_server.transport.grpc.reflection import enable_reflection
from llm_gateway_server.transport.grpc.servicer import GatewayServicer
from llm_gateway_server.transport.http.server import HttpFacade
from llmgateway.v1 import gateway_service_pb2

logger = logging.getLogger(__name__)

_SERVING = health_pb2.HealthCheckResponse.SERVING
_NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
#: Seconds before the end of the shutdown grace at which running streams are cut with a
#: summary, so the summary leaves before gRPC cancels what is left.
_CUT_MARGIN_S = 0.5
#: Connection-age grace beyond the longest call: time for its last message to leave.
_AGE_GRACE_MARGIN_S = 5.0


def connection_age_options(server: ServerConfig) -> list[tuple[str, int]]:
    """gRPC connection-age options: the grace covers the longest call the server allows.

    Connection age rebalances clients across replicas (GOAWAY, then they reconnect); the
    grace is how long calls already on the old connection may still run, so it is the
    longest call, not the shutdown grace: the server never cuts a call it accepted.
    """
    if server.max_connection_age_s <= 0:
        return []
    grace_s = server.longest_call_s + _AGE_GRACE_MARGIN_S
    return [
        ("grpc.max_connection_age_ms", int(server.max_connection_age_s * 1000)),
        ("grpc.max_connection_age_grace_ms", int(grace_s * 1000)),
    ]


def build_providers(
    snapshot: ConfigSnapshot, reuse: Mapping[str, Provider] | None = None
) -> dict[str, Provider]:
    """One adapter per enabled provider; ``reuse`` keeps adapters whose config is unchanged."""
    providers: dict[str, Provider] = {}
    for name, cfg in snapshot.config.providers.items():
        if not snapshot.provider_enabled(name):
            continue
        providers[name] = (reuse or {}).get(name) or build_provider(
            name, cfg, snapshot.api_keys.get(name)
        )
    return providers


async def preload_litellm(snapshot: ConfigSnapshot) -> None:
    """Import LiteLLM off the event loop, and only when an enabled provider needs it.

    The import takes seconds; done in a thread it never stalls calls in flight (on reload)
    and never runs at all for configs with only OpenAI-compatible providers.
    """
    cfg = snapshot.config
    if any(not p.native for n, p in cfg.providers.items() if snapshot.provider_enabled(n)):
        from llm_gateway_server.providers.litellm_adapter import load_litellm

        await asyncio.to_thread(load_litellm)


def _credentials(tls: TlsConfig) -> grpc.ServerCredentials:
    key = Path(tls.key_file).read_bytes()
    cert = Path(tls.cert_file).read_bytes()
    client_ca = Path(tls.client_ca_file).read_bytes() if tls.client_ca_file else None
    return grpc.ssl_server_credentials(
        [(key, cert)], root_certificates=client_ca, require_client_auth=client_ca is not None
    )


@dataclass
class GatewayServer:
    """A built, not yet started, gateway server and everything it owns."""

    server: grpc.aio.Server
    port: int
    snapshot: ConfigSnapshot
    gateway: Gateway
    router: Router
    state: GatewayState
    telemetry: Telemetry
    providers: dict[str, Provider]
    health: HealthServicer
    servicer: GatewayServicer
    pipeline: CallPipeline
    config_path: str | None = None
    #: The OpenAI/Ollama HTTP facade; ``None`` when ``http.listen`` is empty.
    http: HttpFacade | None = None
    _background: set[asyncio.Task[None]] = field(default_factory=set)
    #: Adapters replaced by a reload, waiting for the last call that may use them.
    _retiring: list[Provider] = field(default_factory=list)

    async def start(self) -> None:
        """Start telemetry, routing's probes and the gRPC server; report health."""
        await self.telemetry.start()
        await self.router.start()
        await self.state.start(on_peer_transition=self.router.apply_peer_transition)
        await self.server.start()
        if self.http is not None:
            await self.http.start()
        await self.health.set(LIVENESS_SERVICE_NAME, _SERVING)
        await self._set_ready(self.router.ready)
        logger.info(
            "llm-gateway serving on port %d (config %s, generation %d; disabled providers: %s)",
            self.port,
            self.snapshot.source,
            self.snapshot.generation,
            ", ".join(f"{n} ({why})" for n, why in self.snapshot.disabled.items()) or "none",
        )

    async def _set_ready(self, ready: bool) -> None:
        await self.health.set(GATEWAY_SERVICE_NAME, _SERVING if ready else _NOT_SERVING)

    def on_readiness(self, ready: bool) -> None:
        """Routing's readiness callback: flip the named health service."""
        task = asyncio.get_running_loop().create_task(self._set_ready(ready))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def stop(self, grace: float | None = None) -> None:
        """Drain: health NOT_SERVING first, refuse new calls, let in-flight ones finish."""
        grace = self.snapshot.config.server.shutdown_grace_s if grace is None else grace
        await self.health.enter_graceful_shutdown()
        self.servicer.drain()
        if self.http is not None:
            self.http.drain()
        drain = min(self.snapshot.config.server.drain_delay_s, grace)
        if drain > 0:
            await asyncio.sleep(drain)
        # stop() closes the port and cancels what is still running after the rest of
        # `grace`; streams still running just before that end with a cut summary instead.
        # Both ports drain at once, each giving its calls in flight the rest of `grace`.
        remaining = grace - drain
        loop = asyncio.get_running_loop()
        stopping = [loop.create_task(self.server.stop(remaining))]
        if self.http is not None:
            stopping.append(loop.create_task(self.http.stop(remaining)))
        if remaining > _CUT_MARGIN_S:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.pipeline.idle(), remaining - _CUT_MARGIN_S)
        cut = self.pipeline.cut_streams()
        if cut:
            logger.warning("shutdown grace over: %d stream(s) cut with a summary", cut)
        await asyncio.gather(*stopping)
        await self.pipeline.aclose()
        await self.router.aclose()
        retiring, self._retiring = self._retiring, []
        await asyncio.gather(*(p.aclose() for p in retiring), return_exceptions=True)
        await asyncio.gather(*(p.aclose() for p in self.providers.values()))
        await self.state.aclose()
        await self.telemetry.aclose()
        for task in list(self._background):
            task.cancel()

    async def reload(self, path: str | None = None) -> list[str]:
        """Re-read the config; on errors keep the old one and return the error lines."""
        path = path or self.config_path
        if path is None:
            return ["no config file to reload (the server was built from a snapshot)"]
        try:
            snapshot = load_config(path, generation=self.snapshot.generation + 1)
        except ConfigError as exc:
            for line in exc.errors:
                logger.error(
                    "config reload rejected, keeping generation %d: %s",
                    self.snapshot.generation,
                    line,
                )
            return exc.errors
        old = self.snapshot
        unchanged = {
            name: provider
            for name, provider in self.providers.items()
            if old.config.providers.get(name) == snapshot.config.providers.get(name)
            and old.api_keys.get(name) == snapshot.api_keys.get(name)
        }
        await preload_litellm(snapshot)
        providers = build_providers(snapshot, reuse=unchanged)
        retired = [p for name, p in self.providers.items() if providers.get(name) is not p]
        self.router.swap(snapshot, providers)
        self.state.swap(snapshot)
        self.gateway.swap(snapshot)
        self.snapshot, self.providers = snapshot, providers
        if (
            old.config.server != snapshot.config.server
            or old.config.telemetry != snapshot.config.telemetry
        ):
            logger.warning("server and telemetry settings take effect at the next restart")
        # Calls in flight may still hold a retired adapter: close it once the last call
        # begun under the old generation ended.
        task = asyncio.get_running_loop().create_task(self._retire(retired, old.generation))
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        logger.info("config reloaded: generation %d from %s", snapshot.generation, path)
        await self._set_ready(self.router.ready)
        return []

    async def _retire(self, providers: list[Provider], generation: int) -> None:
        if not providers:
            return
        self._retiring.extend(providers)
        await self.pipeline.idle(generation)
        for provider in providers:
            self._retiring.remove(provider)
        await asyncio.gather(*(p.aclose() for p in providers), return_exceptions=True)


async def build_server(
    snapshot: ConfigSnapshot,
    *,
    listen: str | None = None,
    config_path: str | None = None,
    telemetry: Telemetry | None = None,
    reuse_port: bool = False,
    http_listen: str | None = None,
) -> GatewayServer:
    """Build the gateway server for ``snapshot`` bound to ``listen`` (port 0 picks a free port).

    ``http_listen`` overrides ``http.listen`` (``""`` turns the HTTP facade off).
    """
    cfg = snapshot.config
    telemetry = telemetry or setup_telemetry(cfg.telemetry)
    telemetry.rpc.limit_target_labels(cfg.server.max_target_labels)
    state = await build_state(snapshot)
    await preload_litellm(snapshot)
    providers = build_providers(snapshot)
    # The gRPC receive limit sits above max_message_bytes so that an oversized request
    # reaches the servicer and gets INVALID_ARGUMENT naming it, not a bare RESOURCE_EXHAUSTED.
    options = [
        ("grpc.max_receive_message_length", cfg.server.max_message_bytes * 2 + 1024),
        ("grpc.max_send_message_length", cfg.server.max_message_bytes * 2 + 1024),
        ("grpc.so_reuseport", 1 if reuse_port else 0),
    ]
    options += connection_age_options(cfg.server)
    server = grpc.aio.server(options=options)
    health = HealthServicer()
    holder: list[GatewayServer] = []
    router = Router(
        snapshot,
        providers,
        observer=telemetry.observer,
        peers=state.breaker_peers,
        on_readiness=lambda ready: holder[0].on_readiness(ready) if holder else None,
    )
    gateway = Gateway(snapshot, router, state, telemetry.rpc)
    pipeline = CallPipeline(gateway, telemetry.rpc)
    servicer = GatewayServicer(gateway, pipeline)
    handlers.register(servicer, server)
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    service_names = (
        gateway_service_pb2.DESCRIPTOR.services_by_name["GatewayService"].full_name,
        health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
        reflection.SERVICE_NAME,
    )
    enable_reflection(service_names, server)
    address = listen or cfg.server.listen
    if cfg.server.tls is not None:
        port = server.add_secure_port(address, _credentials(cfg.server.tls))
    else:
        port = server.add_insecure_port(address)
    built = GatewayServer(
        server,
        port,
        snapshot,
        gateway,
        router,
        state,
        telemetry,
        providers,
        health,
        servicer,
        pipeline,
        config_path,
    )
    built.http = http_facade(snapshot, gateway, pipeline, http_listen, reuse_port=reuse_port)
    holder.append(built)
    return built


def http_facade(
    snapshot: ConfigSnapshot,
    gateway: Gateway,
    pipeline: CallPipeline,
    http_listen: str | None,
    *,
    reuse_port: bool,
) -> HttpFacade | None:
    """The HTTP facade over the same ``Gateway``, or ``None`` when no address is set."""
    listen = snapshot.config.http.listen if http_listen is None else http_listen
    if not listen:
        return None
    return HttpFacade(gateway, pipeline, listen, reuse_port=reuse_port)
