"""Fake upstream LLM servers (aiohttp, 127.0.0.1, port 0) for fault injection in tests.

    async with FakeOpenAI(Behaviour(content="Paris.")) as fake:      # or the fake_openai fixture
        provider = OpenAICompatibleProvider("p", ProviderConfig(kind="openai_compatible",
                                            api_base=fake.base_url), api_key=None)
        fake.script(Behaviour(fault=Fault.HTTP_ERROR, status=503))  # next request fails
        fake.behaviour = Behaviour(fault=Fault.HANG)                 # later ones hang
        ...
        assert fake.requests[-1].json["model"] == "m"
        await fake.wait_disconnect()          # the client went away mid-request
        await fake.wait_no_connections()      # nothing left open

Faults: HANG, HTTP_ERROR (any status), RATE_LIMIT (Retry-After), MALFORMED, CUT_STREAM,
TRUNCATE, DROP, and ``fake.refuse()`` / ``fake.accept()`` for refused connections; plus
``first_token_delay_s``, ``chunk_delay_s``, ``hold`` (an Event gating the rest of a stream),
and ``fault_times`` (fail N requests, then answer).
"""

from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.behaviour import Behaviour, FakeToolCall, FakeUsage, Fault, fake_vector
from tests.fakes.gemini import FakeGemini
from tests.fakes.ollama import FakeOllama
from tests.fakes.openai import FakeOpenAI
from tests.fakes.server import FakeUpstream, Frame, RecordedRequest

__all__ = [
    "Behaviour",
    "FakeAnthropic",
    "FakeGemini",
    "FakeOllama",
    "FakeOpenAI",
    "FakeToolCall",
    "FakeUpstream",
    "FakeUsage",
    "Fault",
    "Frame",
    "RecordedRequest",
    "fake_vector",
]
