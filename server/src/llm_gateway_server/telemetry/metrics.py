"""Prometheus instruments of the gateway, recorded with prometheus_client directly.

Why not the OpenTelemetry metrics SDK (plus a Prometheus reader): the same per-RPC set of
recordings (2 in-flight changes, 4 histograms, 4 counters) measured 10 us with this module
and 93 us with the OTel SDK's instruments (timeit, best of 5 x 20k, Python 3.11 on the
2-core dev box); the scrape format is the same. Label children are cached by their value
tuple, which halves the cost of ``labels(...)``. Whole-RPC numbers (server scope, attempt,
log line, spans): ``.venv/bin/python -m tests.telemetry.microbench``.
"""

from __future__ import annotations

from typing import Generic, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from llm_gateway_server.telemetry import semconv as sc

_M = TypeVar("_M", Counter, Gauge, Histogram)

_CLIENT_LABELS = (
    "gen_ai_operation_name",
    "gen_ai_provider_name",
    "gen_ai_request_model",
    "gen_ai_response_model",
    "error_type",
)
_TARGET_LABELS = ("route", "provider", "model")


class _Children(Generic[_M]):
    """The labelled children of one metric, cached by label values."""

    __slots__ = ("_cache", "_metric")

    def __init__(self, metric: _M) -> None:
        self._metric: _M = metric
        self._cache: dict[tuple[str, ...], _M] = {}

    def get(self, *values: str) -> _M:
        child = self._cache.get(values)
        if child is None:
            child = self._metric.labels(*values)
            self._cache[values] = child
        return child


def _histogram(
    registry: CollectorRegistry,
    name: str,
    doc: str,
    labels: tuple[str, ...],
    buckets: tuple[float, ...],
) -> _Children[Histogram]:
    return _Children(Histogram(name, doc, labels, registry=registry, buckets=buckets))


def _counter(
    registry: CollectorRegistry, name: str, doc: str, labels: tuple[str, ...]
) -> _Children[Counter]:
    return _Children(Counter(name, doc, labels, registry=registry))


class GatewayMetrics:
    """Every metric the gateway exports, in one registry of its own."""

    def __init__(self, registry: CollectorRegistry | None = None, *, latest: bool = False) -> None:
        """Create the instruments.

        Args:
            registry: Where to register; a fresh registry when ``None`` (so several
                instances, e.g. in tests, never clash).
            latest: Also emit the latest experimental GenAI names (gen_ai.client.inference.*).
        """
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self.latest = latest
        r = self.registry
        client4 = _CLIENT_LABELS[:4]
        self._client_duration = _histogram(
            r, sc.CLIENT_OPERATION_DURATION, "GenAI operation duration (one upstream attempt).",
            _CLIENT_LABELS, sc.DURATION_BUCKETS,
        )  # fmt: skip
        self._client_tokens = _histogram(
            r, sc.CLIENT_TOKEN_USAGE, "Number of input and output tokens used.",
            (*client4, "gen_ai_token_type"), sc.TOKEN_BUCKETS,
        )  # fmt: skip
        self._client_ttfc = _histogram(
            r, sc.CLIENT_TIME_TO_FIRST_CHUNK, "Time to receive the first chunk of a stream.",
            client4, sc.DURATION_BUCKETS,
        )  # fmt: skip
        self._server_duration = _histogram(
            r, sc.SERVER_REQUEST_DURATION, "Gateway RPC duration.",
            ("rpc_method", "route", "status"), sc.DURATION_BUCKETS,
        )  # fmt: skip
        self._server_ttft = _histogram(
            r, sc.SERVER_TIME_TO_FIRST_TOKEN, "Gateway time to first token (StreamChat).",
            (*client4[:3], "route"), sc.TIME_TO_FIRST_TOKEN_BUCKETS,
        )  # fmt: skip
        self._requests = _counter(
            r, sc.REQUESTS, "Gateway RPCs by route, provider, model, status and caller.",
            (*_TARGET_LABELS, "status", "caller"),
        )  # fmt: skip
        self._tokens = _counter(
            r, sc.TOKENS, "Tokens spent upstream, by direction (input|output).",
            (*_TARGET_LABELS, "direction"),
        )  # fmt: skip
        self._cost = _counter(
            r, sc.COST_USD, "Estimated upstream cost, USD.", (*_TARGET_LABELS, "caller")
        )
        self._fallbacks = _counter(r, sc.FALLBACKS, "Moves to a route's next target.", ("route",))
        self._cache = _counter(r, sc.CACHE_REQUESTS, "Response cache lookups.", ("result",))
        self._rejections = _counter(
            r, sc.REJECTIONS, "Requests refused by rate limits, budgets or concurrency.",
            ("reason",),
        )  # fmt: skip
        self._breaker = _Children(
            Gauge(sc.BREAKER_STATE, "Circuit breaker state: 0 closed, 1 half-open, 2 open.",
                  ("provider", "model"), registry=r)
        )  # fmt: skip
        self._inflight = _Children(
            Gauge(sc.INFLIGHT_REQUESTS, "Upstream calls in flight.", ("provider",), registry=r)
        )
        if latest:
            self._init_latest(r)

    def _init_latest(self, r: CollectorRegistry) -> None:
        client4 = _CLIENT_LABELS[:4]
        self._inf_duration = _histogram(
            r, sc.INFERENCE_DURATION, "GenAI client inference operation duration.",
            _CLIENT_LABELS, sc.DURATION_BUCKETS,
        )  # fmt: skip
        self._inf_ttfc = _histogram(
            r, sc.INFERENCE_TIME_TO_FIRST_CHUNK, "Time to receive the first chunk.",
            client4, sc.DURATION_BUCKETS,
        )  # fmt: skip
        usage_labels = (*client4, "gen_ai_token_modality")
        self._inf_usage_in = _counter(
            r, sc.INFERENCE_USAGE_INPUT_TOKENS, "Input tokens used.", usage_labels
        )
        self._inf_usage_out = _counter(
            r, sc.INFERENCE_USAGE_OUTPUT_TOKENS, "Output tokens used.", usage_labels
        )
        self._inf_op_in = _histogram(
            r, sc.INFERENCE_OPERATION_INPUT_TOKENS, "Input tokens per inference operation.",
            _CLIENT_LABELS, sc.TOKEN_BUCKETS,
        )  # fmt: skip
        self._inf_op_out = _histogram(
            r, sc.INFERENCE_OPERATION_OUTPUT_TOKENS, "Output tokens per inference operation.",
            _CLIENT_LABELS, sc.TOKEN_BUCKETS,
        )  # fmt: skip

    # --- per attempt -------------------------------------------------------------------
    def inflight(self, provider: str) -> Gauge:
        """The in-flight gauge of ``provider`` (the attempt incs and decs it)."""
        return self._inflight.get(provider)

    def record_attempt(
        self,
        *,
        operation: str,
        provider: str,
        request_model: str,
        response_model: str,
        error_type: str,
        duration_s: float,
        time_to_first_chunk_s: float | None,
        usage: tuple[int, int] | None,
    ) -> None:
        """Record one finished upstream attempt (``usage``: input, output tokens)."""
        self._client_duration.get(
            operation, provider, request_model, response_model, error_type
        ).observe(duration_s)
        if usage is not None:
            self._client_tokens.get(
                operation, provider, request_model, response_model, "input"
            ).observe(usage[0])
            if operation != "embeddings":
                self._client_tokens.get(
                    operation, provider, request_model, response_model, "output"
                ).observe(usage[1])
        if time_to_first_chunk_s is not None:
            self._client_ttfc.get(operation, provider, request_model, response_model).observe(
                time_to_first_chunk_s
            )
        if self.latest:
            self._record_attempt_latest(
                (operation, provider, request_model, response_model),
                error_type,
                duration_s,
                time_to_first_chunk_s,
                usage,
            )

    def _record_attempt_latest(
        self,
        key: tuple[str, str, str, str],
        error_type: str,
        duration_s: float,
        time_to_first_chunk_s: float | None,
        usage: tuple[int, int] | None,
    ) -> None:
        # The conventions ask for usage on every operation, 0 when none was received.
        tokens_in, tokens_out = usage if usage is not None else (0, 0)
        self._inf_duration.get(*key, error_type).observe(duration_s)
        if time_to_first_chunk_s is not None:
            self._inf_ttfc.get(*key).observe(time_to_first_chunk_s)
        self._inf_usage_in.get(*key, "unknown").inc(tokens_in)
        self._inf_op_in.get(*key, error_type).observe(tokens_in)
        if key[0] != "embeddings":
            self._inf_usage_out.get(*key, "unknown").inc(tokens_out)
            self._inf_op_out.get(*key, error_type).observe(tokens_out)

    # --- per RPC -----------------------------------------------------------------------
    def record_rpc(
        self,
        *,
        method: str,
        route: str,
        provider: str,
        model: str,
        status: str,
        duration_s: float,
        caller: str = "",
    ) -> None:
        """Record one finished gateway RPC (``caller`` is a bounded label)."""
        self._server_duration.get(method, route, status).observe(duration_s)
        self._requests.get(route, provider, model, status, caller).inc()

    def record_spend(
        self,
        *,
        route: str,
        provider: str,
        model: str,
        usage: tuple[int, int],
        cost_usd: float,
        caller: str = "",
    ) -> None:
        """Count tokens and cost an RPC spent upstream."""
        tokens_in, tokens_out = usage
        if tokens_in:
            self._tokens.get(route, provider, model, "input").inc(tokens_in)
        if tokens_out:
            self._tokens.get(route, provider, model, "output").inc(tokens_out)
        if cost_usd > 0:
            self._cost.get(route, provider, model, caller).inc(cost_usd)

    def record_time_to_first_token(
        self, *, operation: str, provider: str, model: str, route: str, seconds: float
    ) -> None:
        """Record the gateway's time to first token of a successful stream."""
        self._server_ttft.get(operation, provider, model, route).observe(seconds)

    def rejection(self, reason: str) -> None:
        """Count a refused request (``reason``: rate_limited, budget_exceeded, concurrency)."""
        self._rejections.get(reason).inc()

    def cache_lookup(self, hit: bool) -> None:
        """Count a response-cache lookup."""
        self._cache.get("hit" if hit else "miss").inc()

    # --- routing events ----------------------------------------------------------------
    def fallback(self, route: str) -> None:
        """Count a move to the next target of ``route``."""
        self._fallbacks.get(route).inc()

    def breaker_state(self, provider: str, model: str, state: str) -> None:
        """Set a target's breaker gauge (unknown state names count as open)."""
        self._breaker.get(provider, model).set(sc.BREAKER_STATE_VALUES.get(state.lower(), 2))
