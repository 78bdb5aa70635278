"""Route resolution: from ``model``, task, privacy and caller to the permitted targets."""

from __future__ import annotations

from dataclasses import dataclass, field

from llm_gateway_server.config.routes import Balancing, RouteConfig
from llm_gateway_server.core.errors import (
    NoPermittedTarget,
    NotPermitted,
    RequestInvalid,
    RouteNotFound,
)
from llm_gateway_server.core.types import Principal, Privacy, Task
from llm_gateway_server.routing.privacy import effective_privacy, locality_permitted
from llm_gateway_server.routing.table import RoutingTable
from llm_gateway_server.routing.targets import RouteTarget


@dataclass(frozen=True)
class Resolution:
    """A resolved request: route, task, privacy and the targets it may use."""

    #: The route's name, or ``provider/model`` for a direct target.
    route: str
    task: Task
    privacy: Privacy
    #: Permitted targets of enabled providers, sorted by tier.
    targets: tuple[RouteTarget, ...]
    balancing: Balancing = Balancing.LEAST_OUTSTANDING
    direct: bool = False
    #: The table resolved against; the call keeps it even if the config is reloaded.
    table: RoutingTable | None = field(default=None, repr=False, compare=False)


def _find_route(
    table: RoutingTable, model: str, task: Task | None, principal: Principal
) -> tuple[str, RouteConfig | None, tuple[RouteTarget, ...]]:
    config = table.snapshot.config
    if not model:
        wanted = task or Task.CHAT
        name = config.default_route(wanted)
        if name is None:
            raise RouteNotFound(
                f"no default route for task {wanted.value}; name a route in model",
                metadata={"task": wanted.value},
            )
        return name, config.routes[name], table.routes[name]
    if model in config.routes:
        return model, config.routes[model], table.routes[model]
    provider, sep, upstream_model = model.partition("/")
    if sep and upstream_model and config.server.allow_direct_targets:
        if provider not in config.providers:
            raise RouteNotFound(
                f"no route named {model!r} and no provider named {provider!r}",
                metadata={"model": model},
            )
        if principal.routes is not None:
            # A key limited to some routes must not get around that by naming targets.
            raise NotPermitted(
                f"this key may only use its routes, not the direct target {model!r}",
                reason="ROUTE_NOT_PERMITTED",
                metadata={"route": model},
            )
        return model, None, (table.direct_target(provider, upstream_model),)
    hint = " (direct provider/model targets are off)" if sep else ""
    raise RouteNotFound(f"no route named {model!r}{hint}", metadata={"model": model})


def _check_route(name: str, route: RouteConfig | None, task: Task | None, p: Principal) -> Task:
    route_task = route.task if route is not None else (task or Task.CHAT)
    if task is not None and task is not route_task:
        raise RequestInvalid(
            "task",
            f"route {name!r} serves task {route_task.value}, not {task.value}",
            reason="TASK_MISMATCH",
        )
    if route is not None and p.routes is not None and name not in p.routes:
        raise NotPermitted(
            f"this key may not use route {name!r}",
            reason="ROUTE_NOT_PERMITTED",
            metadata={"route": name},
        )
    return route_task


def _permitted(
    table: RoutingTable, name: str, targets: tuple[RouteTarget, ...], privacy: Privacy
) -> tuple[RouteTarget, ...]:
    allowed = [t for t in targets if locality_permitted(privacy, t.locality)]
    if not allowed:
        refused = ", ".join(t.label for t in targets)
        raise NoPermittedTarget(
            f"{name!r} has no local target and a STRICT request only uses local providers "
            f"(refused: {refused})",
            metadata={"route": name, "privacy": privacy.name},
        )
    usable = tuple(t for t in allowed if table.provider_usable(t.provider))
    if not usable:
        why = "; ".join(f"{t.label}: {table.disabled_reason(t.provider)}" for t in allowed)
        raise NoPermittedTarget(
            f"every target of {name!r} permitted for {privacy.name} requests is disabled ({why})",
            metadata={"route": name, "privacy": privacy.name},
        )
    return usable


def resolve(
    table: RoutingTable,
    *,
    model: str,
    task: Task | None,
    privacy: Privacy | None,
    principal: Principal,
) -> Resolution:
    """Resolve a request against ``table`` (see ``Router.resolve``)."""
    name, route, targets = _find_route(table, model, task, principal)
    route_task = _check_route(name, route, task, principal)
    effective = effective_privacy(
        privacy,
        route_name=name,
        route=route,
        principal=principal,
        server=table.snapshot.config.server,
    )
    return Resolution(
        route=name,
        task=route_task,
        privacy=effective,
        targets=_permitted(table, name, targets, effective),
        balancing=route.balancing if route is not None else Balancing.LEAST_OUTSTANDING,
        direct=route is None,
        table=table,
    )
