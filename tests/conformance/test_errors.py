"""Every adapter classifies upstream failures the same way, with credential-free messages."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import pytest

from llm_gateway_server.core.errors import UpstreamError, UpstreamFailure
from llm_gateway_server.providers.base import Provider
from tests.conformance.cases import API_KEY, AdapterCase
from tests.conformance.streams import MODES, Mode, chat_request, run
from tests.fakes import Behaviour, FakeUpstream, Fault

# Upstreams echo keys back in their error bodies ("Incorrect API key provided: sk-...").
ECHO = f"Incorrect API key provided: {API_KEY}"
CONTEXT = "This model's maximum context length is 8192 tokens. However, you requested 9000 tokens."


@dataclass(frozen=True)
class Scenario:
    """A fault and how every adapter must report it."""

    id: str
    behaviour: Behaviour | None
    failure: UpstreamFailure
    retryable: bool = True
    retry_after_s: float | None = None
    modes: tuple[Mode, ...] = MODES
    needs: str = ""
    extra: dict[str, object] = field(default_factory=dict)


SCENARIOS = (
    Scenario(
        "http_500",
        Behaviour(fault=Fault.HTTP_ERROR, status=500, error_message=ECHO),
        UpstreamFailure.SERVER_ERROR,
    ),
    Scenario(
        "http_503",
        Behaviour(fault=Fault.HTTP_ERROR, status=503, error_message=ECHO),
        UpstreamFailure.SERVER_ERROR,
    ),
    Scenario(
        "http_429",
        Behaviour(fault=Fault.RATE_LIMIT, retry_after="7", error_message=ECHO),
        UpstreamFailure.RATE_LIMITED,
        retry_after_s=7.0,
    ),
    Scenario(
        "http_401",
        Behaviour(fault=Fault.HTTP_ERROR, status=401, error_message=ECHO),
        UpstreamFailure.AUTH,
    ),
    Scenario(
        "http_404",
        Behaviour(fault=Fault.HTTP_ERROR, status=404, error_message="model 'm' not found"),
        UpstreamFailure.NOT_FOUND,
    ),
    Scenario(
        "context_length",
        Behaviour(fault=Fault.HTTP_ERROR, status=400, error_message=CONTEXT),
        UpstreamFailure.CONTEXT_LENGTH,
        retryable=False,
    ),
    Scenario(
        "bad_request",
        Behaviour(fault=Fault.HTTP_ERROR, status=400, error_message="temperature must be <= 2"),
        UpstreamFailure.BAD_REQUEST,
        retryable=False,
    ),
    Scenario(
        "malformed_unary",
        Behaviour(fault=Fault.MALFORMED),
        UpstreamFailure.BAD_RESPONSE,
        modes=("unary",),
    ),
    Scenario(
        "malformed_stream",
        Behaviour(fault=Fault.MALFORMED),
        UpstreamFailure.BAD_RESPONSE,
        modes=("stream",),
        needs="malformed_stream_detected",
    ),
    Scenario("cut", Behaviour(fault=Fault.CUT_STREAM, cut_after=3), UpstreamFailure.BAD_RESPONSE),
    Scenario("dropped", Behaviour(fault=Fault.DROP), UpstreamFailure.CONNECT),
    Scenario("empty", Behaviour(content=""), UpstreamFailure.EMPTY_ANSWER),
)


def check(err: UpstreamError, scenario: Scenario) -> None:
    assert err.failure is scenario.failure, err.message
    assert err.caller_caused is not scenario.retryable
    assert API_KEY not in err.message and API_KEY not in str(err)
    assert "Traceback" not in err.message
    if scenario.retry_after_s is not None:
        assert err.retry_after_s == scenario.retry_after_s


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.id for s in SCENARIOS])
async def test_failure_classification(
    case: AdapterCase, fake: FakeUpstream, provider: Provider, scenario: Scenario, mode: Mode
) -> None:
    if mode not in scenario.modes:
        pytest.skip(f"{scenario.id} is a {scenario.modes[0]} fault")
    if scenario.needs and not getattr(case, scenario.needs):
        pytest.skip(f"{case.id}: LiteLLM skips unparsable stream chunks silently")
    assert scenario.behaviour is not None
    fake.behaviour = scenario.behaviour
    with pytest.raises(UpstreamError) as err:
        await run(provider, chat_request(case.model), mode)
    check(err.value, scenario)
    assert len(fake.requests) == 1, "the router retries; the adapter must not"


@pytest.mark.parametrize("mode", MODES)
async def test_connection_refused(
    case: AdapterCase, fake: FakeUpstream, provider: Provider, mode: Mode
) -> None:
    await fake.refuse()
    with pytest.raises(UpstreamError) as err:
        await run(provider, chat_request(case.model), mode)
    check(err.value, Scenario("refused", None, UpstreamFailure.CONNECT))


@pytest.mark.parametrize("mode", MODES)
async def test_deadline_bounds_the_call(
    case: AdapterCase, fake: FakeUpstream, provider: Provider, mode: Mode
) -> None:
    # Unary: the upstream never answers; stream: headers come, the first token never does.
    if mode == "unary":
        fake.behaviour = Behaviour(fault=Fault.HANG, hang_s=30)
    else:
        fake.behaviour = Behaviour(first_token_delay_s=30)
    started = time.monotonic()
    with pytest.raises(UpstreamError) as err:
        await run(provider, chat_request(case.model), mode, timeout_s=0.3)
    check(err.value, Scenario("timeout", None, UpstreamFailure.TIMEOUT))
    assert time.monotonic() - started < 30, "the adapter waited for the upstream, not the deadline"
    await fake.wait_disconnect(5)
