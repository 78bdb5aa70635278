"""The whole configuration file, validated as one immutable model."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from llm_gateway_server.config.auth import AuthConfig
from llm_gateway_server.config.cache import CacheConfig
from llm_gateway_server.config.http import HttpConfig
from llm_gateway_server.config.providers import ProviderConfigByKind
from llm_gateway_server.config.routes import RouteConfig
from llm_gateway_server.config.server import ServerConfig
from llm_gateway_server.config.state import StateConfig
from llm_gateway_server.config.telemetry import TelemetryConfig
from llm_gateway_server.core.types import Task


class GatewayConfig(BaseModel):
    """The gateway's configuration (see the config reference in README.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    server: ServerConfig = Field(default_factory=ServerConfig)
    http: HttpConfig = Field(default_factory=HttpConfig)
    providers: dict[str, ProviderConfigByKind] = Field(default_factory=dict)
    routes: dict[str, RouteConfig] = Field(default_factory=dict)
    auth: AuthConfig = Field(default_factory=AuthConfig)
    cache: CacheConfig = Field(default_factory=CacheConfig)
    state: StateConfig = Field(default_factory=StateConfig)
    telemetry: TelemetryConfig = Field(default_factory=TelemetryConfig)

    @model_validator(mode="after")
    def _check_references(self) -> GatewayConfig:
        errors: list[str] = []
        for route_name, route in self.routes.items():
            if "/" in route_name:
                errors.append(f"routes.{route_name}: a route name may not contain '/'")
            lists = (("targets", route.targets), ("flexible", route.flexible or ()))
            for field, targets in lists:
                for i, target in enumerate(targets):
                    if target.provider not in self.providers:
                        known = ", ".join(sorted(self.providers)) or "none"
                        errors.append(
                            f"routes.{route_name}.{field}[{i}].provider: unknown provider "
                            f"{target.provider!r} (known: {known})"
                        )
        for task in Task:
            defaults = [n for n, r in self.routes.items() if r.task is task and r.default]
            if len(defaults) > 1:
                errors.append(
                    f"routes: more than one default route for task {task.value}: "
                    + ", ".join(defaults)
                )
        for i, key in enumerate(self.auth.keys):
            for allowed in key.routes or ():
                if allowed not in self.routes:
                    errors.append(f"auth.keys[{i}].routes: unknown route {allowed!r}")
        if errors:
            raise ValueError("\n".join(errors))
        return self

    def default_route(self, task: Task) -> str | None:
        """The route answering ``task`` when a request names no model."""
        for name, route in self.routes.items():
            if route.task is task and route.default:
                return name
        named = self.routes.get(task.value)
        if named is not None and named.task is task and named.default is not False:
            return task.value
        for name, route in self.routes.items():
            if route.task is task and route.default is None:
                return name
        return None
