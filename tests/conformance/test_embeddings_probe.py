"""Embeddings come back in input order; probes report health without raising."""

from __future__ import annotations

import pytest

from llm_gateway_server.config.providers import ProviderKind
from llm_gateway_server.core.errors import UpstreamError, UpstreamFailure
from llm_gateway_server.core.types import ProviderEmbedRequest
from llm_gateway_server.providers.base import Provider
from tests.conformance.cases import API_KEY, AdapterCase
from tests.fakes import Behaviour, FakeUpstream, Fault, fake_vector

INPUTS = ("alpha", "beta", "gamma", "delta")
PROBED = (ProviderKind.OPENAI_COMPATIBLE, ProviderKind.OPENAI, ProviderKind.OLLAMA)


def embed_request(case: AdapterCase) -> ProviderEmbedRequest:
    return ProviderEmbedRequest(model=case.model, inputs=INPUTS)


async def test_embeddings_in_input_order(
    case: AdapterCase, fake: FakeUpstream, provider: Provider
) -> None:
    if not case.embeddings:
        pytest.skip(f"{case.id} has no embeddings API")
    fake.behaviour = Behaviour(shuffle_embeddings=True, embedding_dim=8)
    answer = await provider.embed(embed_request(case), timeout_s=5)
    assert answer.vectors == tuple(tuple(fake_vector(text, 8)) for text in INPUTS)
    if case.embed_usage:
        assert answer.usage.prompt_tokens == 11
    assert answer.model == "m"


async def test_embeddings_errors_are_classified(
    case: AdapterCase, fake: FakeUpstream, provider: Provider
) -> None:
    if not case.embeddings:
        pytest.skip(f"{case.id} has no embeddings API")
    fake.behaviour = Behaviour(fault=Fault.HTTP_ERROR, status=503, error_message=f"key {API_KEY}")
    with pytest.raises(UpstreamError) as err:
        await provider.embed(embed_request(case), timeout_s=5)
    assert err.value.failure is UpstreamFailure.SERVER_ERROR
    assert API_KEY not in err.value.message
    assert len(fake.requests) == 1, "the router retries; the adapter must not"


async def test_no_embeddings_api_is_not_found(case: AdapterCase, provider: Provider) -> None:
    if case.embeddings:
        pytest.skip(f"{case.id} has an embeddings API")
    with pytest.raises(UpstreamError) as err:
        await provider.embed(embed_request(case), timeout_s=5)
    assert err.value.failure is UpstreamFailure.NOT_FOUND


async def test_probe_healthy(case: AdapterCase, fake: FakeUpstream, provider: Provider) -> None:
    result = await provider.probe(timeout_s=2)
    assert result.ok, result.error
    if case.kind in PROBED:
        assert result.models == ("fake-model",)
        assert fake.requests, "the probe reached the upstream"
    else:
        assert not fake.requests, "cloud probes cost nothing"


@pytest.mark.parametrize("fault", ["refused", "http_500", "malformed"])
async def test_probe_failure_never_raises(
    case: AdapterCase, fake: FakeUpstream, provider: Provider, fault: str
) -> None:
    if case.kind not in PROBED:
        pytest.skip(f"{case.id} is not probed over the network")
    if fault == "refused":
        await fake.refuse()
    elif fault == "http_500":
        fake.behaviour = Behaviour(fault=Fault.HTTP_ERROR, error_message=f"key {API_KEY}")
    else:
        fake.behaviour = Behaviour(fault=Fault.MALFORMED)
    result = await provider.probe(timeout_s=2)
    assert not result.ok
    assert result.error
    assert API_KEY not in result.error


async def test_probe_timeout(case: AdapterCase, fake: FakeUpstream, provider: Provider) -> None:
    if case.kind not in PROBED:
        pytest.skip(f"{case.id} is not probed over the network")
    fake.behaviour = Behaviour(fault=Fault.HANG, hang_s=30)
    result = await provider.probe(timeout_s=0.2)
    assert not result.ok
    assert result.error
