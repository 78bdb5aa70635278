"""Retries of one target: exponential backoff with full jitter, Retry-After, the deadline.

Only failures that a second try of the same target may cure are retried here (refused
connection, 5xx, 429, a garbled body). A timeout has already spent the target's time and
an empty answer tends to repeat (a model that answers nothing keeps doing so), so those
move on to the next target at once, as do the wrong key or model name (401/403/404/405).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from llm_gateway_server.config.providers import RetryConfig
from llm_gateway_server.core.errors import UpstreamError, UpstreamFailure

#: Failures worth a second try of the same target.
RETRY_SAME_TARGET = frozenset(
    {
        UpstreamFailure.CONNECT,
        UpstreamFailure.SERVER_ERROR,
        UpstreamFailure.RATE_LIMITED,
        UpstreamFailure.BAD_RESPONSE,
    }
)
#: The least a retry is assumed to take when the target has no recent latency.
RETRY_FLOOR_S = 0.05


def backoff_s(retry: RetryConfig, retry_number: int, rng: random.Random) -> float:
    """Full-jitter delay before retry number ``retry_number`` (1 for the first retry)."""
    cap = min(retry.max_delay_s, retry.base_delay_s * 2 ** (retry_number - 1))
    return rng.uniform(0.0, cap)


@dataclass(frozen=True, slots=True)
class RetryDecision:
    """Whether to try the same target again, and after how long."""

    retry: bool
    delay_s: float = 0.0


def plan_retry(
    error: UpstreamError,
    *,
    retry: RetryConfig,
    tries: int,
    remaining_s: float,
    typical_s: float | None,
    rng: random.Random,
) -> RetryDecision:
    """Decide about another try of the target that just failed with ``error``.

    Args:
        error: The failure of try number ``tries``.
        retry: The provider's retry settings.
        tries: Tries of this target so far (1 after the first).
        remaining_s: Time left before the caller's deadline.
        typical_s: The target's recent median latency, if known.
        rng: Source of jitter.

    A retry is planned only when the wait plus the expected duration of the retry (recent
    median latency, at least ``RETRY_FLOOR_S``) ends before the deadline. A Retry-After
    longer than ``max_delay_s`` or than the time left moves on instead of sleeping.
    """
    if error.failure not in RETRY_SAME_TARGET:
        return RetryDecision(False)
    if tries >= retry.max_attempts:
        return RetryDecision(False)
    delay = backoff_s(retry, tries, rng)
    if error.retry_after_s is not None:
        if error.retry_after_s > retry.max_delay_s or error.retry_after_s >= remaining_s:
            return RetryDecision(False)
        delay = max(delay, error.retry_after_s)
    needed = delay + max(typical_s or 0.0, RETRY_FLOOR_S)
    if needed >= remaining_s:
        return RetryDecision(False)
    return RetryDecision(True, delay)
