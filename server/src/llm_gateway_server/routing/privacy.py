"""Privacy: which privacy a request gets, and which targets it may reach.

A request's privacy is the least protection it needs: STRICT needs a local provider,
FLEXIBLE accepts the cloud but does not require it. A target serves a request when it is at
least that private, so a FLEXIBLE request on a local-only route is served locally.

The requested privacy is the request's own, else the key's default, else the route's, else
``server.default_privacy``. A key's ``max_privacy`` is a hard policy: a request asking for
more is refused (PERMISSION_DENIED). A route's ``max_privacy`` only narrows the targets it
serves with: the request runs at the stricter of the two, never refused for it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from llm_gateway_server.config.routes import RouteConfig
from llm_gateway_server.config.server import ServerConfig
from llm_gateway_server.core.errors import NotPermitted
from llm_gateway_server.core.types import Locality, Principal, Privacy
from llm_gateway_server.routing.targets import RouteTarget


def ceiling(route: RouteConfig | None, principal: Principal) -> Privacy:
    """The widest privacy this caller's requests run with on this route (``None``: direct)."""
    route_max = route.max_privacy.to_privacy() if route is not None else Privacy.FLEXIBLE
    if principal.max_privacy is None:
        return route_max
    return min(route_max, principal.max_privacy)


def default_privacy(
    route: RouteConfig | None, principal: Principal, server: ServerConfig
) -> Privacy:
    """The privacy a request of this caller gets on this route when it asks for none."""
    if principal.default_privacy is not None:
        chosen = principal.default_privacy
    elif route is not None and route.default_privacy is not None:
        chosen = route.default_privacy.to_privacy()
    else:
        chosen = server.default_privacy.to_privacy()
    return min(chosen, ceiling(route, principal))


def effective_privacy(
    requested: Privacy | None,
    *,
    route_name: str,
    route: RouteConfig | None,
    principal: Principal,
    server: ServerConfig,
) -> Privacy:
    """The privacy the request runs with.

    Raises:
        NotPermitted: ``requested`` is wider than the key's ``max_privacy``
            (PRIVACY_NOT_PERMITTED). A route's narrower ``max_privacy`` never raises.
    """
    if requested is None:
        return default_privacy(route, principal, server)
    key_max = principal.max_privacy
    if key_max is not None and requested > key_max:
        raise NotPermitted(
            f"privacy {requested.name} is not permitted for this key (at most {key_max.name})",
            reason="PRIVACY_NOT_PERMITTED",
            metadata={"route": route_name, "max_privacy": key_max.name},
        )
    return min(requested, ceiling(route, principal))


def locality_permitted(privacy: Privacy, locality: Locality) -> bool:
    """True when a request of ``privacy`` may be sent to a provider at ``locality``.

    STRICT requests only ever reach local providers; this is checked when the targets are
    resolved and again before every upstream call, fallback included.
    """
    return privacy is Privacy.FLEXIBLE or locality is Locality.LOCAL


def targets_for(
    route: RouteConfig | None, targets: Sequence[RouteTarget], privacy: Privacy
) -> tuple[RouteTarget, ...]:
    """The targets a request of ``privacy`` may use, in its fallback order.

    Args:
        route: The route's config (``None`` for a direct target: ``targets`` as they are).
        targets: Every target of the route (the routing table's, one per provider/model).
        privacy: The request's effective privacy.

    A FLEXIBLE request on a route with a ``flexible:`` list gets that list's order and
    tiers; every other request gets ``targets:``. Either way only permitted localities.
    """
    if route is None:
        return tuple(t for t in targets if locality_permitted(privacy, t.locality))
    by_key = {(t.provider, t.model): t for t in targets}
    chosen: list[RouteTarget] = []
    for i, cfg in enumerate(route.targets_of(privacy)):
        target = by_key.get((cfg.provider, cfg.model))
        if target is None or not locality_permitted(privacy, target.locality):
            continue
        tier = cfg.tier if cfg.tier is not None else i
        if (target.tier, target.position) != (tier, i):
            # The same live state (breaker, window), with this list's place in the order.
            target = dataclasses.replace(target, tier=tier, position=i)
        chosen.append(target)
    return tuple(sorted(chosen, key=lambda t: (t.tier, t.position)))


def skipped_for_privacy(
    targets: Sequence[RouteTarget], privacy: Privacy
) -> tuple[RouteTarget, ...]:
    """The targets of a route a request of ``privacy`` may not reach (cloud, for STRICT)."""
    return tuple(t for t in targets if not locality_permitted(privacy, t.locality))


def skipped_note(labels: Sequence[str]) -> str:
    """The suffix an error gets when targets were skipped for privacy ("" when none)."""
    if not labels:
        return ""
    return f"; skipped for STRICT privacy: {', '.join(labels)}"
