"""Names, units and buckets from the OpenTelemetry GenAI semantic conventions (v1.41).

Attribute keys are the conventions' own; the gateway's are under ``llm_gateway.*``.
Metric names are the Prometheus spellings of the conventions' instruments (dots become
underscores, unit ``s`` becomes the ``_seconds`` suffix, counters gain ``_total``).
"""

from __future__ import annotations

from collections.abc import Mapping

# --- span attributes: GenAI conventions -------------------------------------------------
OPERATION_NAME = "gen_ai.operation.name"
PROVIDER_NAME = "gen_ai.provider.name"
REQUEST_MODEL = "gen_ai.request.model"
REQUEST_TEMPERATURE = "gen_ai.request.temperature"
REQUEST_TOP_P = "gen_ai.request.top_p"
REQUEST_MAX_TOKENS = "gen_ai.request.max_tokens"
REQUEST_STREAM = "gen_ai.request.stream"
RESPONSE_MODEL = "gen_ai.response.model"
RESPONSE_FINISH_REASONS = "gen_ai.response.finish_reasons"
RESPONSE_TIME_TO_FIRST_CHUNK = "gen_ai.response.time_to_first_chunk"
USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"
USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
INPUT_MESSAGES = "gen_ai.input.messages"
OUTPUT_MESSAGES = "gen_ai.output.messages"
SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"
ERROR_TYPE = "error.type"
# --- span attributes: RPC conventions (the gateway's own server span) -------------------
RPC_SYSTEM = "rpc.system"
RPC_SERVICE = "rpc.service"
RPC_METHOD = "rpc.method"
RPC_GRPC_STATUS_CODE = "rpc.grpc.status_code"
# --- span attributes: the gateway's own -------------------------------------------------
GW_ROUTE = "llm_gateway.route"
GW_ATTEMPT = "llm_gateway.attempt"
GW_BREAKER_STATE = "llm_gateway.breaker_state"
GW_PRIVACY = "llm_gateway.privacy"
GW_OUTCOME = "llm_gateway.outcome"
GW_RETRIES = "llm_gateway.retries"
GW_PROVIDER_KIND = "llm_gateway.provider_kind"
GW_REQUEST_ID = "llm_gateway.request_id"
GW_CACHE_HIT = "llm_gateway.cache_hit"
GW_ATTEMPTS = "llm_gateway.attempts"
GW_FALLBACKS = "llm_gateway.fallbacks"
GW_COST_USD = "llm_gateway.cost_usd"
GW_ERROR_REASON = "llm_gateway.error_reason"
GW_FALLBACK_EVENT = "llm_gateway.fallback"
GW_CALLER = "llm_gateway.caller"
GW_SUB_CALLER = "llm_gateway.sub_caller"
GW_CUT = "llm_gateway.cut"
#: Each ``metadata`` entry of a request becomes ``llm_gateway.metadata.<key>`` on its span.
GW_METADATA_PREFIX = "llm_gateway.metadata."

# --- histogram buckets (ExplicitBucketBoundaries advised by the conventions) ------------
DURATION_BUCKETS = (
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
)  # fmt: skip
TOKEN_BUCKETS = (
    1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864,
)  # fmt: skip
TIME_TO_FIRST_TOKEN_BUCKETS = (
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
)  # fmt: skip

# --- metric names (Prometheus) -----------------------------------------------------------
#: gen_ai.client.operation.duration (s), per upstream attempt.
CLIENT_OPERATION_DURATION = "gen_ai_client_operation_duration_seconds"
#: gen_ai.client.token.usage ({token}), with gen_ai.token.type input|output.
CLIENT_TOKEN_USAGE = "gen_ai_client_token_usage"  # noqa: S105 - a metric name
#: gen_ai.client.operation.time_to_first_chunk (s), streamed attempts only.
CLIENT_TIME_TO_FIRST_CHUNK = "gen_ai_client_operation_time_to_first_chunk_seconds"
#: gen_ai.server.request.duration (s), the gateway's own RPCs.
SERVER_REQUEST_DURATION = "gen_ai_server_request_duration_seconds"
#: gen_ai.server.time_to_first_token (s), successful StreamChat RPCs.
SERVER_TIME_TO_FIRST_TOKEN = "gen_ai_server_time_to_first_token_seconds"  # noqa: S105
# The latest experimental GenAI conventions (gen_ai.client.inference.*), emitted in addition
# when OTEL_SEMCONV_STABILITY_OPT_IN lists gen_ai_latest_experimental.
INFERENCE_DURATION = "gen_ai_client_inference_duration_seconds"
INFERENCE_TIME_TO_FIRST_CHUNK = "gen_ai_client_inference_time_to_first_chunk_seconds"
#: Counters (Prometheus adds ``_total``): gen_ai.client.inference.usage.{input,output}_tokens.
INFERENCE_USAGE_INPUT_TOKENS = "gen_ai_client_inference_usage_input_tokens"
INFERENCE_USAGE_OUTPUT_TOKENS = "gen_ai_client_inference_usage_output_tokens"
#: Histograms: gen_ai.client.inference.operation.{input,output}_tokens.
INFERENCE_OPERATION_INPUT_TOKENS = "gen_ai_client_inference_operation_input_tokens"
INFERENCE_OPERATION_OUTPUT_TOKENS = "gen_ai_client_inference_operation_output_tokens"
# The gateway's own (counters without the ``_total`` prometheus_client appends).
REQUESTS = "llm_gateway_requests"
FALLBACKS = "llm_gateway_fallbacks"
CACHE_REQUESTS = "llm_gateway_cache_requests"
BREAKER_STATE = "llm_gateway_breaker_state"
INFLIGHT_REQUESTS = "llm_gateway_inflight_requests"
REJECTIONS = "llm_gateway_rejections"
COST_USD = "llm_gateway_cost_usd"
TOKENS = "llm_gateway_tokens"

#: Value of OTEL_SEMCONV_STABILITY_OPT_IN that turns on the latest GenAI conventions.
OPT_IN_LATEST = "gen_ai_latest_experimental"

#: llm_gateway_breaker_state values.
BREAKER_STATE_VALUES: Mapping[str, int] = {"closed": 0, "half_open": 1, "half-open": 1, "open": 2}

#: Error reasons counted in llm_gateway_rejections_total, by their ``reason`` label.
REJECTION_REASONS: Mapping[str, str] = {
    "RATE_LIMITED": "rate_limited",
    "TOKEN_RATE_LIMITED": "rate_limited",
    "BUDGET_EXCEEDED": "budget_exceeded",
    "CONCURRENCY_LIMITED": "concurrency",
}

#: gRPC status names to codes (rpc.grpc.status_code), so telemetry needs no grpc import.
GRPC_STATUS_CODES: Mapping[str, int] = {
    name: code
    for code, name in enumerate(
        (
            "OK",
            "CANCELLED",
            "UNKNOWN",
            "INVALID_ARGUMENT",
            "DEADLINE_EXCEEDED",
            "NOT_FOUND",
            "ALREADY_EXISTS",
            "PERMISSION_DENIED",
            "RESOURCE_EXHAUSTED",
            "FAILED_PRECONDITION",
            "ABORTED",
            "OUT_OF_RANGE",
            "UNIMPLEMENTED",
            "INTERNAL",
            "UNAVAILABLE",
            "DATA_LOSS",
            "UNAUTHENTICATED",
        )
    )
}


def latest_experimental(env: Mapping[str, str]) -> bool:
    """True when ``OTEL_SEMCONV_STABILITY_OPT_IN`` asks for the latest GenAI conventions."""
    values = env.get("OTEL_SEMCONV_STABILITY_OPT_IN", "")
    return OPT_IN_LATEST in (v.strip() for v in values.split(","))
