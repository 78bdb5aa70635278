"""What happens to a request before and after the upstream call: limits, budget, cache, stats.

``admit`` runs the request-rate limit with the response-cache lookup (Chat and StreamChat
only; a hit is answered at once and costs neither tokens nor budget, a refusal wins over a
hit); then the token-rate limit with the prompt's estimated tokens, with the budget check
that atomically reserves the request's worst case (released when the tokens are refused).
Every admitted request ends with exactly one ``complete`` or ``fail`` (both are no-ops for a
cache hit, already accounted for by ``admit``); both charge the usage they are given, so a
cut or cancelled call pays for what it delivered.

With a budget, the worst case is bounded by capping ``max_tokens``: the ledger grants what is
left (at most the request's own worst case) and ``Admission.max_tokens`` is the largest
completion that fits in the grant, so concurrent calls cannot overrun a budget beyond the
error of the prompt estimate.

Redis round trips left per request (stats are never among them: ``StatsWriter`` batches
them in the background, and a request without limits, budget or cache sends nothing):

- admit: the request-rate checks (one ``limits`` script per window) with the cache GET
  beside them; then the token-rate checks with the budget reservation beside them. Two
  steps, not one, because a cache hit must use no token window or budget. They stay
  separate scripts because ``limits`` owns its windows' keys and scripts, and the windows
  of one principal are asked in turn so a call refused by the narrower one uses none of
  the wider one.
- complete/fail: the token correction, the cache SET, the spend settlement (awaited so the
  next reservation sees the spend, not the hold) and the shared budgets, side by side.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from llm_gateway_server.config.loader import ConfigSnapshot
from llm_gateway_server.config.state import SharedLimitsConfig
from llm_gateway_server.core.calls import BoundedLabels
from llm_gateway_server.core.errors import GatewayError
from llm_gateway_server.core.types import ChatAnswer, ChatRequest, EmbedRequest, Principal, Usage
from llm_gateway_server.state.budgets import Budgets, Grant, Hold
from llm_gateway_server.state.ledger import Ledger, Reservation, UsageRecord
from llm_gateway_server.state.rate_limits import RateLimits
from llm_gateway_server.state.redis_health import StoreUnavailable
from llm_gateway_server.state.response_cache import (
    ResponseCache,
    cache_key,
    is_cacheable,
    is_storable,
    new_entry,
)
from llm_gateway_server.state.tokens import estimate_prompt_tokens
from llm_gateway_server.state.views import CachedAnswer, to_nanos

logger = logging.getLogger(__name__)

_A = TypeVar("_A")
_B = TypeVar("_B")


@dataclass(slots=True)
class Admission:
    """A request let through ``admit``; hand it to ``complete`` or ``fail``."""

    principal: Principal
    route: str
    #: ``chat`` or ``embedding``.
    kind: str
    #: Tokens counted against the token limits so far (the prompt estimate).
    estimated_tokens: int = 0
    reservation: Reservation | None = None
    #: Set when the request was cacheable (looked up, and stored after a good answer).
    cache_key: str | None = None
    #: The cached answer on a hit; serve it instead of calling upstream.
    cached: CachedAnswer | None = None
    #: The request's own cache TTL, seconds.
    cache_ttl_s: float | None = None
    #: True once accounted for (a cache hit, or after ``complete``/``fail``).
    settled: bool = False
    #: The caller's stats label (bounded).
    caller: str = ""
    #: ``max_tokens`` to send upstream: what the budget reservation covers (``None``: as asked).
    max_tokens: int | None = None
    #: Holds on the gateway's and the caller's budgets (``state.*_limits.budget_usd``).
    shared: tuple[Hold, ...] = ()


class RequestPolicy:
    """Limits, budgets, response cache and usage accounting for one replica."""

    def __init__(
        self,
        snapshot: ConfigSnapshot,
        *,
        limits: RateLimits,
        ledger: Ledger,
        cache: ResponseCache,
    ) -> None:
        self._limits = limits
        self._ledger = ledger
        self._cache = cache
        # Side by side only where a step waits on the network: with memory state every step
        # finishes at once, and a task per step cost about 3 % of the unary benchmark's
        # Python time (asyncio.gather/_ensure_future in profile-gateway-unary.md, 23:24 UTC).
        self._concurrent = snapshot.config.state.redis_url is not None
        # Stats rows per route are bounded like metric labels: direct ``provider/model``
        # targets are the callers' to name.
        self._stat_routes = BoundedLabels(snapshot.config.server.max_target_labels)
        self._budgets = Budgets(snapshot, ledger)
        self.swap(snapshot, cache=cache)

    @property
    def cache(self) -> ResponseCache:
        """The response cache in use."""
        return self._cache

    def swap(self, snapshot: ConfigSnapshot, *, cache: ResponseCache | None = None) -> None:
        """Take a reloaded config (and, when given, a rebuilt cache)."""
        self._snapshot = snapshot
        self._config = snapshot.config
        self._budgets.swap(snapshot)
        self._limits.fail_open = snapshot.config.state.limits_fail_open
        if cache is not None:
            self._cache = cache

    async def admit(
        self,
        principal: Principal,
        route: str,
        request: ChatRequest | EmbedRequest,
        *,
        targets: Sequence[tuple[str, str]] | None = None,
        caller: str = "",
    ) -> Admission:
        """Apply limits, look up the cache and reserve budget for one request.

        Args:
            principal: The caller.
            route: The resolved route name (or ``provider/model`` for a direct target).
            request: The validated request.
            targets: ``(provider, model)`` pairs the request may reach, for the cost
                estimate; default: every target of ``route``.
            caller: The caller's stats label.

        Raises:
            LimitExceeded: RATE_LIMITED, TOKEN_RATE_LIMITED or BUDGET_EXCEEDED.
            StateUnavailable: the store does not answer and limits fail closed.
        """
        is_chat = isinstance(request, ChatRequest)
        admission = Admission(principal, route, "chat" if is_chat else "embedding", caller=caller)
        scopes = self._shared_scopes(caller)
        try:
            if isinstance(request, ChatRequest) and is_cacheable(request, self._config.cache):
                admission.cache_ttl_s = request.cache.ttl_s
                admission.cache_key = cache_key(
                    request,
                    route=route,
                    principal=principal,
                    shared=self._config.cache.shared_across_tenants,
                )
            # The cache GET only reads, so it goes out beside the request-rate checks: one
            # round trip of latency instead of two. A refusal still wins over a hit.
            counted, cached = await _side_by_side(
                self._acquire_requests(principal, scopes, route),
                self._lookup(admission.cache_key),
                concurrent=self._concurrent,
            )
            if isinstance(counted, BaseException):
                raise counted
            if isinstance(cached, BaseException):
                raise cached
            admission.cached = cached
            if admission.cached is not None:
                admission.settled = True
                await self._record(admission, cache_hits=1)
                return admission
            prompt_tokens = estimate_prompt_tokens(request)
            admission.estimated_tokens = prompt_tokens
            # Side by side, one round trip of latency: a token refusal releases the budget
            # holds just granted (below), as a budget refusal always kept its token count.
            counted, granted = await _side_by_side(
                self._acquire_tokens(principal, scopes, route, prompt_tokens),
                self._budgets.reserve([principal, *scopes], route, request, targets),
                concurrent=self._concurrent,
            )
            if isinstance(granted, Grant):
                for hold in granted.holds:
                    if hold.owner is principal:
                        admission.reservation = hold.reservation
                    else:
                        admission.shared += (hold,)
                admission.max_tokens = granted.max_tokens
            if isinstance(counted, BaseException):
                raise counted
            if isinstance(granted, BaseException):
                raise granted
        except GatewayError:
            admission.settled = True
            # Releases the tenant's hold (the record carries it) and the shared ones.
            await _settle_together(
                [
                    self._record(admission, errors=1, cache_misses=int(bool(admission.cache_key))),
                    self._release_shared(admission, None),
                ],
                concurrent=self._concurrent,
            )
            raise
        return admission

    async def complete(
        self,
        admission: Admission,
        *,
        answer_usage: Usage | None,
        cost_usd: float | None,
        provider: str,
        model: str,
        fallbacks: int = 0,
        answer: ChatAnswer | None = None,
        ttl_s: float | None = None,
    ) -> None:
        """Account for an answered request and cache its answer when allowed.

        Args:
            admission: From ``admit``.
            answer_usage: The usage the upstream reported; ``None`` when it reported none
                (the estimate then stands in the token limits).
            cost_usd: The call's cost (``pricing.cost_usd``); ``None``: unknown, counted 0.
            provider: The provider that answered.
            model: The upstream model that answered.
            fallbacks: Targets that failed before the one that answered.
            answer: The complete answer (assembled for streams); stored when cacheable.
            ttl_s: Cache TTL override; default: the request's, else ``cache.ttl_s``.
        """
        if admission.settled:
            return
        admission.settled = True
        usage = answer_usage or Usage()
        steps = [
            self._record(
                admission,
                cost_nanos=to_nanos(cost_usd or 0.0),
                prompt_tokens=usage.prompt_tokens,
                completion_tokens=usage.completion_tokens,
                cache_misses=int(admission.cache_key is not None),
                fallbacks=int(fallbacks > 0),
            ),
            self._release_shared(admission, cost_usd),
        ]
        if answer_usage is not None:
            steps.append(
                self._add_tokens(admission, usage.total_tokens - admission.estimated_tokens)
            )
        if admission.cache_key is not None and answer is not None:
            steps.append(
                self._store(admission, answer, provider=provider, model=model, ttl_s=ttl_s)
            )
        await _settle_together(steps, concurrent=self._concurrent)

    async def fail(
        self,
        admission: Admission,
        *,
        error_reason: str,
        usage: Usage | None = None,
        cost_usd: float | None = None,
    ) -> None:
        """Count the request as an error, charging what it delivered (``usage``, cost)."""
        if admission.settled:
            return
        admission.settled = True
        logger.debug("request on route %s failed: %s", admission.route, error_reason)
        spent = usage or Usage()
        steps = [
            self._record(
                admission,
                errors=1,
                cache_misses=int(admission.cache_key is not None),
                cost_nanos=to_nanos(cost_usd or 0.0),
                prompt_tokens=spent.prompt_tokens,
                completion_tokens=spent.completion_tokens,
            ),
            self._release_shared(admission, cost_usd),
        ]
        if usage is not None:
            steps.append(
                self._add_tokens(admission, spent.total_tokens - admission.estimated_tokens)
            )
        await _settle_together(steps, concurrent=self._concurrent)

    def _shared_scopes(self, caller: str) -> list[Principal]:
        """The gateway-wide and per-caller limits as principals of their own, named
        ``@gateway`` and ``@caller:NAME`` in windows and refusals."""
        state = self._config.state
        scopes = []
        # The narrower window first: a call one caller may not make uses none of the
        # gateway's window.
        own = state.caller_limits
        if own.active:
            scopes.append(_scope(f"@caller:{caller or 'anonymous'}", own))
        shared = state.gateway_limits
        if shared.active:
            scopes.append(_scope("@gateway", shared))
        return scopes

    async def _release_shared(self, admission: Admission, cost_usd: float | None) -> None:
        if admission.shared:
            await self._budgets.release(
                admission.shared,
                route=self._stat_routes(admission.route),
                caller=admission.caller,
                cost_nanos=to_nanos(cost_usd or 0.0),
            )

    async def _acquire_requests(
        self, principal: Principal, scopes: Sequence[Principal], route: str
    ) -> None:
        await self._limits.acquire_request(principal, route)
        for scope in scopes:
            await self._limits.acquire_request(scope, route)

    async def _acquire_tokens(
        self, principal: Principal, scopes: Sequence[Principal], route: str, tokens: int
    ) -> None:
        await self._limits.acquire_tokens(principal, route, tokens)
        for scope in scopes:
            await self._limits.acquire_tokens(scope, route, tokens)

    async def _add_tokens(self, admission: Admission, tokens: int) -> None:
        await self._limits.add_tokens(admission.principal, admission.route, tokens)
        for scope in self._shared_scopes(admission.caller):
            await self._limits.add_tokens(scope, admission.route, tokens)

    async def _lookup(self, key: str | None) -> CachedAnswer | None:
        if key is None:
            return None
        try:
            return await self._cache.get(key)
        except StoreUnavailable:
            return None

    async def _store(
        self,
        admission: Admission,
        answer: ChatAnswer,
        *,
        provider: str,
        model: str,
        ttl_s: float | None,
    ) -> None:
        config = self._config.cache
        ttl = ttl_s if ttl_s is not None else admission.cache_ttl_s
        ttl = config.ttl_s if ttl is None else ttl
        if ttl <= 0 or admission.cache_key is None or not is_storable(answer, config):
            return
        entry = new_entry(answer, provider=provider, model=model, route=admission.route)
        try:
            await self._cache.put(admission.cache_key, entry, ttl)
        except StoreUnavailable:
            return

    async def _record(self, admission: Admission, **counters: int) -> None:
        principal = admission.principal
        # The counters are UsageRecord's int fields, by name (requests, errors, ...).
        increments: dict[str, Any] = counters
        record = UsageRecord(
            tenant=principal.tenant,
            route=self._stat_routes(admission.route),
            caller=admission.caller,
            period=principal.budget_period,
            budget_usd=principal.budget_usd,
            reservation=admission.reservation,
            **increments,
        )
        try:
            await self._ledger.record(record)
        except StoreUnavailable:
            return


async def _settle_together(steps: Sequence[Coroutine[Any, Any, None]], *, concurrent: bool) -> None:
    """Run settlement steps side by side: token correction, cache store, spend and shared
    budgets touch different keys and none needs another's answer, so a completion waits one
    Redis round trip instead of one per step. Each step absorbs a store outage itself."""
    results = await _run_all(steps, concurrent=concurrent)
    for result in results:
        if isinstance(result, BaseException):
            raise result


async def _side_by_side(
    first: Coroutine[Any, Any, _A], second: Coroutine[Any, Any, _B], *, concurrent: bool
) -> tuple[_A | BaseException, _B | BaseException]:
    """Both results (or what each raised), run side by side when ``concurrent``."""
    a, b = await _run_all((first, second), concurrent=concurrent)
    return cast("_A | BaseException", a), cast("_B | BaseException", b)


async def _run_all(steps: Sequence[Coroutine[Any, Any, Any]], *, concurrent: bool) -> list[Any]:
    if concurrent:
        return list(await asyncio.gather(*steps, return_exceptions=True))
    results: list[Any] = []
    for step in steps:
        try:
            results.append(await step)
        except Exception as exc:  # as gather's return_exceptions; a cancel still propagates
            results.append(exc)
    return results


def _scope(name: str, limits: SharedLimitsConfig) -> Principal:
    return Principal(
        tenant=name,
        rpm=limits.rpm,
        tpm=limits.tpm,
        budget_usd=limits.budget_usd,
        budget_period=limits.budget_period.value,
    )
