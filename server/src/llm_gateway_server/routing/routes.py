"""Route resolution: from ``model``, task, privacy and caller to the permitted targets."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from llm_gateway_server.config.routes import Balancing, RouteConfig
from llm_gateway_server.core.errors import (
    NoPermittedTarget,
    NotPermitted,
    RequestInvalid,
    RouteNotFound,
)
from llm_gateway_server.core.types import Principal, Privacy, Task
from llm_gateway_server.providers.options import check_options
from llm_gateway_server.routing.privacy import (
    effective_privacy,
    skipped_for_privacy,
    skipped_note,
    targets_for,
)
from llm_gateway_server.routing.table import RoutingTable
from llm_gateway_server.routing.targets import RouteTarget

#: Longest caller-given name echoed into a message or ErrorInfo metadata: a huge ``model``
#: must not grow the status until the trailers overflow.
MAX_ECHOED_NAME = 200
#: Longest upstream model name a direct ``provider/model`` target may carry.
MAX_MODEL_NAME = 512


def echoed(name: str) -> str:
    """``name`` as it may appear in an error: cut to ``MAX_ECHOED_NAME`` characters."""
    if len(name) <= MAX_ECHOED_NAME:
        return name
    return f"{name[:MAX_ECHOED_NAME]}...({len(name)} characters)"


@dataclass(frozen=True)
class Resolution:
    """A resolved request: route, task, privacy and the targets it may use."""

    #: The route's name, or ``provider/model`` for a direct target.
    route: str
    task: Task
    privacy: Privacy
    #: Permitted targets of enabled providers, in this privacy's fallback order.
    targets: tuple[RouteTarget, ...]
    balancing: Balancing = Balancing.LEAST_OUTSTANDING
    direct: bool = False
    #: ``provider/model`` of the route's targets this request may not reach (the cloud
    #: ones, for STRICT), so an error can say what was left out and why.
    skipped: tuple[str, ...] = ()
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
    shown = echoed(model)
    if sep and upstream_model and config.server.allow_direct_targets:
        if provider not in config.providers:
            raise RouteNotFound(
                f"no route named {shown!r} and no provider named {echoed(provider)!r}",
                metadata={"model": shown},
            )
        if len(upstream_model) > MAX_MODEL_NAME:
            raise RequestInvalid(
                "model",
                f"the model name is {len(upstream_model)} characters long "
                f"(at most {MAX_MODEL_NAME})",
            )
        if principal.routes is not None:
            # A key limited to some routes must not get around that by naming targets.
            raise NotPermitted(
                f"this key may only use its routes, not the direct target {shown!r}",
                reason="ROUTE_NOT_PERMITTED",
                metadata={"route": shown},
            )
        return model, None, (table.direct_target(provider, upstream_model),)
    hint = " (direct provider/model targets are off)" if sep else ""
    raise RouteNotFound(f"no route named {shown!r}{hint}", metadata={"model": shown})


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
    table: RoutingTable,
    name: str,
    route: RouteConfig | None,
    targets: tuple[RouteTarget, ...],
    privacy: Privacy,
) -> tuple[tuple[RouteTarget, ...], tuple[str, ...]]:
    """The usable targets of this privacy, and the labels of those skipped for privacy."""
    allowed = targets_for(route, targets, privacy)
    skipped = tuple(t.label for t in skipped_for_privacy(targets, privacy))
    shown = echoed(name)
    if not allowed:
        raise NoPermittedTarget(
            f"{shown!r} has no local target and a STRICT request only uses local providers"
            + skipped_note(skipped),
            metadata={"route": shown, "privacy": privacy.name},
        )
    usable = tuple(t for t in allowed if table.provider_usable(t.provider))
    if not usable:
        why = "; ".join(f"{t.label}: {table.disabled_reason(t.provider)}" for t in allowed)
        raise NoPermittedTarget(
            f"every target of {shown!r} permitted for {privacy.name} requests is disabled "
            f"({why}){skipped_note(skipped)}",
            metadata={"route": shown, "privacy": privacy.name},
        )
    return usable, skipped


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
    usable, skipped = _permitted(table, name, route, targets, effective)
    return Resolution(
        route=name,
        task=route_task,
        privacy=effective,
        targets=usable,
        balancing=route.balancing if route is not None else Balancing.LEAST_OUTSTANDING,
        direct=route is None,
        table=table,
        skipped=skipped,
    )


def check_provider_options(
    resolution: Resolution, options: Mapping[str, Any], *, embedding: bool
) -> None:
    """Refuse ``provider_options`` that none of the resolution's targets can take.

    Raises:
        RequestInvalid: naming ``provider_options.KEY`` (reserved, or unknown to every
            provider kind of the targets).
    """
    if not options or resolution.table is None:
        return
    providers = resolution.table.snapshot.config.providers
    kinds = {providers[t.provider].kind for t in resolution.targets}
    check_options(options, kinds, embedding=embedding)
