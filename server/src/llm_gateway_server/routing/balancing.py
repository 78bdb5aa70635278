"""The per-call order of a route's targets: tier by tier, balanced within each tier."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Sequence

from llm_gateway_server.config.routes import Balancing
from llm_gateway_server.routing.targets import RouteTarget


def _weighted_keys(targets: Sequence[RouteTarget], rng: random.Random) -> dict[int, float]:
    # Efraimidis-Spirakis: sorting by u ** (1 / w) descending draws a weighted random order
    # without replacement, so the first pick follows the weights and the rest stay random.
    return {id(t): rng.random() ** (1.0 / t.weight) for t in targets}


def balance_tier(
    targets: Sequence[RouteTarget], balancing: Balancing, rng: random.Random
) -> list[RouteTarget]:
    """Order the targets of one tier for one call.

    * ``weighted``: random by weight.
    * ``least_outstanding``: fewest calls in flight first, ties random by weight.
    * ``lowest_latency``: lowest recent median latency first; a target without recent
      successful calls counts as fastest, so it gets traffic and a measurement.
      Ties random by weight.
    """
    if len(targets) <= 1:
        return list(targets)
    keys = _weighted_keys(targets, rng)
    primary: Callable[[RouteTarget], float]
    if balancing is Balancing.LEAST_OUTSTANDING:

        def primary(t: RouteTarget) -> float:
            return float(t.state.stats.in_flight)

    elif balancing is Balancing.LOWEST_LATENCY:

        def primary(t: RouteTarget) -> float:
            return t.state.stats.window.p50() or 0.0

    else:

        def primary(t: RouteTarget) -> float:
            return 0.0

    return sorted(targets, key=lambda t: (primary(t), -keys[id(t)]))


def order_targets(
    targets: Sequence[RouteTarget],
    balancing: Balancing,
    rng: random.Random,
    *,
    demoted: Callable[[RouteTarget], bool],
) -> list[RouteTarget]:
    """The fallback order for one call.

    ``targets`` are sorted by tier already. Each tier is balanced; then targets for which
    ``demoted`` is true (provider failed its last probe) go last, in the same order.
    """
    ordered: list[RouteTarget] = []
    for _, tier in itertools.groupby(targets, key=lambda t: t.tier):
        ordered.extend(balance_tier(list(tier), balancing, rng))
    return [t for t in ordered if not demoted(t)] + [t for t in ordered if demoted(t)]
