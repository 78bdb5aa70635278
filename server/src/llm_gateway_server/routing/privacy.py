"""Privacy: which privacy a request gets, and which targets it may reach.

The effective privacy is the request's own, else the key's default, else the route's,
else ``server.default_privacy``. The ceiling is the stricter of the route's and the key's
``max_privacy``. A request that explicitly asks for more than the ceiling is refused; a
default above the ceiling is clamped down to it.
"""

from __future__ import annotations

from llm_gateway_server.config.routes import RouteConfig
from llm_gateway_server.config.server import ServerConfig
from llm_gateway_server.core.errors import NotPermitted
from llm_gateway_server.core.types import Locality, Principal, Privacy


def ceiling(route: RouteConfig | None, principal: Principal) -> Privacy:
    """The widest privacy this caller may use on this route (``None``: a direct target)."""
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
        NotPermitted: ``requested`` is wider than the ceiling (PRIVACY_NOT_PERMITTED).
    """
    if requested is None:
        return default_privacy(route, principal, server)
    limit = ceiling(route, principal)
    if requested > limit:
        raise NotPermitted(
            f"privacy {requested.name} is not permitted on {route_name!r} for this key "
            f"(at most {limit.name})",
            reason="PRIVACY_NOT_PERMITTED",
            metadata={"route": route_name, "max_privacy": limit.name},
        )
    return requested


def locality_permitted(privacy: Privacy, locality: Locality) -> bool:
    """True when a request of ``privacy`` may be sent to a provider at ``locality``.

    STRICT requests only ever reach local providers; this is checked when the targets are
    resolved and again before every upstream call, fallback included.
    """
    return privacy is Privacy.FLEXIBLE or locality is Locality.LOCAL
