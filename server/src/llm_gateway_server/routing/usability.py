"""The one definition of a usable target, shared by Health, ListModels and readiness.

A target can be called now when its provider is enabled (and has an adapter), its breaker
would admit a call, its provider did not fail its last probe, and that probe did not show
its model missing from the upstream's list.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from llm_gateway_server.routing.probes import missing_model_hint

if TYPE_CHECKING:
    from llm_gateway_server.routing.table import RoutingTable
    from llm_gateway_server.routing.targets import TargetState


def unusable_reason(table: RoutingTable, state: TargetState) -> str:
    """Why the target cannot be called now; empty when it can."""
    disabled = table.disabled_reason(state.provider)
    if disabled:
        return f"provider disabled: {disabled}"
    if not state.breaker.usable():
        return "circuit open"
    probe = table.probes.get(state.provider)
    if probe is None:
        return ""
    if probe.failed:
        return f"probe failed: {probe.error}" if probe.error else "probe failed"
    if probe.missing(state.model):
        config = table.snapshot.config.providers[state.provider]
        return missing_model_hint(state.provider, state.model, config)
    return ""


def probe_demoted(table: RoutingTable, state: TargetState) -> bool:
    """True when the last probe says the target will likely fail: its provider failed the
    probe, or does not list its model. Such targets go to the end of the fallback order
    (still tried last: a probe can be wrong where a call would work)."""
    probe = table.probes.get(state.provider)
    return probe is not None and (probe.failed or probe.missing(state.model))
