"""Property: no route shape and no sequence of failures sends a STRICT request to the cloud.

Route shapes include a ``flexible:`` list beside ``targets:`` and a route ``max_privacy``
of strict, under which a FLEXIBLE request is served too but, like STRICT, only locally.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llm_gateway_server.core.errors import CALLER_CAUSED, GatewayError, UpstreamFailure
from llm_gateway_server.core.types import (
    ANONYMOUS,
    EmbedRequest,
    Locality,
    Privacy,
    Task,
)
from llm_gateway_server.routing.router import Router
from tests.routing.fakes import (
    CRASH,
    CUT,
    EMPTY,
    HANG,
    OK,
    Behaviour,
    FakeClock,
    FakeProvider,
    chat_request,
    context,
    fail,
    local,
    snapshot,
)

BEHAVIOURS = st.one_of(
    st.sampled_from([OK, OK, EMPTY, HANG, CUT, CRASH]),
    st.builds(
        fail,
        st.sampled_from(list(UpstreamFailure)),
        st.sampled_from([None, 0.001, 100.0]),
    ),
)


@dataclass
class Scenario:
    localities: list[Locality]
    targets: list[tuple[int, int | None, int]]  # provider index, tier, weight
    flexible: list[tuple[int, int | None, int]] | None  # the route's ``flexible:`` list
    strict_route: bool  # the route's max_privacy is strict
    open_at_start: set[int]  # provider indexes whose breaker starts open
    threshold: int
    max_attempts: int
    balancing: str
    script: list[Behaviour]
    calls: list[tuple[str, float]]  # operation, clock advance before it


@st.composite
def scenarios(draw: Any) -> Scenario:
    n = draw(st.integers(1, 4))
    localities = draw(st.lists(st.sampled_from(list(Locality)), min_size=n, max_size=n))
    entries = st.lists(
        st.tuples(st.integers(0, n - 1), st.none() | st.integers(0, 3), st.integers(1, 5)),
        min_size=1,
        max_size=6,
    )
    return Scenario(
        localities=localities,
        targets=draw(entries),
        flexible=draw(st.none() | entries),
        strict_route=draw(st.booleans()),
        open_at_start=draw(st.sets(st.integers(0, n - 1))),
        threshold=draw(st.integers(1, 3)),
        max_attempts=draw(st.integers(1, 3)),
        balancing=draw(st.sampled_from(["weighted", "least_outstanding", "lowest_latency"])),
        script=draw(st.lists(BEHAVIOURS, max_size=30)),
        calls=draw(
            st.lists(
                st.tuples(st.sampled_from(["chat", "stream", "embed"]), st.sampled_from([0, 0, 5])),
                min_size=1,
                max_size=5,
            )
        ),
    )


class ScriptedProvider(FakeProvider):
    """Every provider of a scenario takes its next behaviour from one shared script."""

    def __init__(self, name: str, shared: list[Behaviour]) -> None:
        super().__init__(name)
        self._shared = shared

    def _next(self, kind: str, model: str) -> Behaviour:
        super()._next(kind, model)
        return self._shared.pop(0) if self._shared else OK


def build(s: Scenario, clock: FakeClock) -> tuple[Router, dict[str, ScriptedProvider]]:
    retry = {"max_attempts": s.max_attempts, "base_delay_s": 0.0, "max_delay_s": 0.01}
    breaker = {"failure_threshold": s.threshold, "reset_timeout_s": 5.0}
    providers_cfg = {
        f"p{i}": local(locality=loc.value, retry=retry, breaker=breaker, timeout_s=0.005)
        for i, loc in enumerate(s.localities)
    }

    def entries(listed: list[tuple[int, int | None, int]], first: int) -> list[dict[str, Any]]:
        return [
            {
                "provider": f"p{i}",
                # Models overlap between the two lists, so targets share live state.
                "model": f"m{first + k}",
                "weight": w,
                **({"tier": t} if t is not None else {}),
            }
            for k, (i, t, w) in enumerate(listed)
        ]

    shape: dict[str, Any] = {"balancing": s.balancing, "targets": entries(s.targets, 0)}
    if s.flexible is not None:
        shape["flexible"] = entries(s.flexible, 2)
    if s.strict_route:
        shape["max_privacy"] = "strict"
    routes = {"chat": shape, "embedding": {"task": "embedding", **shape}}
    shared = list(s.script)
    fakes = {name: ScriptedProvider(name, shared) for name in providers_cfg}

    router = Router(snapshot(providers_cfg, routes), fakes, clock=clock)
    listed = [*shape["targets"], *shape.get("flexible", ())]
    for target in listed:
        if int(str(target["provider"])[1:]) in s.open_at_start:
            # Open from the start, as a peer replica would have reported it.
            router.apply_peer_transition(target["provider"], target["model"], "open", time.time())
    return router, fakes


async def run(router: Router, s: Scenario, clock: FakeClock, privacy: Privacy) -> list[str]:
    """Run the scenario's calls; return the providers that answered."""
    answered: list[str] = []
    for operation, advance in s.calls:
        clock.advance(advance)
        task = Task.EMBEDDING if operation == "embed" else None
        try:
            res = router.resolve(model="", task=task, privacy=privacy, principal=ANONYMOUS)
            if privacy is Privacy.STRICT or s.strict_route:
                assert res.privacy is Privacy.STRICT
                assert all(t.locality is Locality.LOCAL for t in res.targets)
            ctx = context(clock, deadline_s=60)
            if operation == "chat":
                answered.append((await router.chat(res, chat_request(), ctx)).provider)
            elif operation == "embed":
                answered.append(
                    (await router.embed(res, EmbedRequest(inputs=("x",)), ctx)).provider
                )
            else:
                stream = await router.open_stream(res, chat_request(), ctx)
                try:
                    async for _ in stream:
                        pass
                finally:
                    await stream.aclose()
                answered.append(stream.provider)
        except GatewayError:
            pass
    await router.aclose()
    return answered


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(), st.sampled_from([Privacy.STRICT, Privacy.FLEXIBLE]))
def test_strict_never_reaches_a_cloud_provider(s: Scenario, privacy: Privacy) -> None:
    """STRICT requests, and FLEXIBLE ones on a strict route, never reach the cloud."""
    if privacy is Privacy.FLEXIBLE:
        s = dataclasses.replace(s, strict_route=True)
    clock = FakeClock()
    router, fakes = build(s, clock)
    answered = asyncio.run(run(router, s, clock, privacy))
    for i, locality in enumerate(s.localities):
        if locality is Locality.CLOUD:
            assert fakes[f"p{i}"].calls == [], f"STRICT request reached cloud provider p{i}"
            assert f"p{i}" not in answered


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(), st.sampled_from(sorted(set(UpstreamFailure) - CALLER_CAUSED)))
def test_flexible_may_use_both(drawn: Scenario, failure: UpstreamFailure) -> None:
    """With every local attempt failing retryably, FLEXIBLE reaches a cloud target."""
    localities = [Locality.LOCAL, Locality.CLOUD, *drawn.localities][:4]
    s = dataclasses.replace(
        drawn,
        localities=localities,
        targets=[(0, 0, 1), (1, 1, 1)]
        + [(i, t, w) for i, t, w in drawn.targets if i < len(localities)],
        flexible=None,
        strict_route=False,
        open_at_start=set(),
        calls=[("chat", 0)],
    )
    clock = FakeClock()
    router, fakes = build(s, clock)
    local_names = {f"p{i}" for i, loc in enumerate(s.localities) if loc is Locality.LOCAL}
    for name, fake in fakes.items():
        fake._shared = [fail(failure)] * 50 if name in local_names else []
    answered = asyncio.run(run(router, s, clock, Privacy.FLEXIBLE))
    assert answered, "a FLEXIBLE request with a healthy cloud target must succeed"
    assert answered[0] not in local_names
    cloud_in_tier0 = any(t == 0 and f"p{i}" not in local_names for i, t, _ in s.targets)
    if not cloud_in_tier0:
        assert fakes["p0"].calls, "the local tier-0 target is tried before the cloud"
