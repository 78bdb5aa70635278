"""The adapter for every non-native kind (ollama, anthropic, gemini, litellm), via LiteLLM.

LiteLLM is imported when such a provider is built, never at module import: it costs seconds
to import and, without LITELLM_LOCAL_MODEL_COST_MAP, fetches its cost map from the internet.
Answers are mapped by ``openai_wire`` (LiteLLM's responses dump to the OpenAI shape), so this
adapter and the native one produce identical answers.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import time
from collections.abc import AsyncGenerator, Mapping
from types import ModuleType
from typing import Any

import aiohttp
import orjson
from opentelemetry import propagate

from llm_gateway_server.config.providers import ProviderConfig, ProviderKind
from llm_gateway_server.core.errors import UpstreamError, UpstreamFailure
from llm_gateway_server.core.redaction import secret_forms, url_secrets
from llm_gateway_server.core.types import (
    ChatAnswer,
    ChatDelta,
    EmbedAnswer,
    ProbeResult,
    ProviderChatRequest,
    ProviderEmbedRequest,
)
from llm_gateway_server.providers.litellm_errors import map_litellm_error
from llm_gateway_server.providers.openai_wire import (
    StreamAssembler,
    build_chat_body,
    parse_chat_answer,
    parse_embed_answer,
)
from llm_gateway_server.providers.options import options_for
from llm_gateway_server.providers.reasoning import StreamSplitter, split_answer, tags_enabled
from llm_gateway_server.providers.upstream_errors import echo_sources, snippet, status_error
from llm_gateway_server.providers.upstream_http import (
    authorization,
    read_capped,
    split_credentials,
)

#: Default Ollama address (LiteLLM's default too).
OLLAMA_API_BASE = "http://localhost:11434"
#: The probe result of kinds without a free health call.
NOT_PROBED = "not probed: no free health call; calls feed the breaker"

# LiteLLM model prefixes per kind: (chat, embeddings). ``ollama_chat/`` speaks /api/chat and
# keeps reasoning and streamed tool calls (``ollama/`` would use /api/generate); embeddings
# only exist under ``ollama/`` (/api/embed). ``None``: the kind has no embeddings API.
_PREFIXES: dict[ProviderKind, tuple[str, str | None]] = {
    ProviderKind.OLLAMA: ("ollama_chat/", "ollama/"),
    ProviderKind.ANTHROPIC: ("anthropic/", None),
    ProviderKind.GEMINI: ("gemini/", "gemini/"),
    ProviderKind.LITELLM: ("", ""),
}

# Arguments holding the caller's own texts (never repeated from an upstream's error).
_CALLER_TEXT_KEYS = ("messages", "tools", "response_format", "input")
#: Upper bound on the error body of a probe.
_ERROR_BODY_BYTES = 64 * 1024

# Body keys that LiteLLM takes as its own arguments.
_STREAM_KEYS = ("model", "stream", "stream_options")

_litellm: ModuleType | None = None


def load_litellm() -> ModuleType:
    """Import and configure LiteLLM once: offline cost map, no telemetry, no own retries."""
    global _litellm
    if _litellm is None:
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        # Read by litellm.constants at import; some paths turn max_retries=0 into this
        # default (``max_retries or DEFAULT_MAX_RETRIES``), so 0 must be the default.
        os.environ.setdefault("DEFAULT_MAX_RETRIES", "0")
        import litellm

        litellm.telemetry = False
        litellm.suppress_debug_info = True
        litellm.turn_off_message_logging = True
        litellm.disable_hf_tokenizer_download = True
        # The router retries and falls back; LiteLLM retrying too would multiply attempts.
        litellm.num_retries = 0
        logging.getLogger("LiteLLM").setLevel(logging.WARNING)
        _litellm = litellm
    return _litellm


class LiteLLMProvider:
    """A provider reached through ``litellm.acompletion`` / ``litellm.aembedding``."""

    def __init__(self, name: str, config: ProviderConfig, *, api_key: str | None) -> None:
        """Args:
        name: The provider's name in the config (used in error messages).
        config: Its config section; ``kind`` picks the LiteLLM prefix.
        api_key: Passed to LiteLLM per call; masked in every message.
        """
        if config.kind not in _PREFIXES:
            raise ValueError(f"provider {name!r}: kind {config.kind} is not served by LiteLLM")
        self.name = name
        self._config = config
        self._api_key = api_key or ""
        #: Every form of every credential this provider holds, masked in its messages.
        self._secrets = (
            *secret_forms(self._api_key, *config.headers.values()),
            *url_secrets(config.api_base),
        )
        self._chat_prefix, self._embed_prefix = _PREFIXES[config.kind]
        base = config.api_base
        if config.kind is ProviderKind.OLLAMA:
            base = base or OLLAMA_API_BASE
        # Userinfo moves to a header, as in the native adapter: an HTTP client next to an
        # Authorization header would refuse (aiohttp) or silently drop one of the two.
        endpoint = split_credentials(base) if base else None
        self._api_base = endpoint.base if endpoint else None
        # LiteLLM sends the key itself: only userinfo needs a header of ours.
        basic = endpoint.basic_auth if endpoint is not None and not self._api_key else None
        auth = authorization(config.headers, None, basic)
        self._auth_headers = {"Authorization": auth} if auth else {}
        self._litellm = load_litellm()
        self._session: aiohttp.ClientSession | None = None
        self._known_models: set[str] = set()

    # ------------------------------------------------------------ Provider API

    async def chat(self, request: ProviderChatRequest, *, timeout_s: float) -> ChatAnswer:
        """One ``litellm.acompletion`` call, mapped like the native adapter's answers."""
        kwargs = self._chat_kwargs(request, timeout_s)
        try:
            async with asyncio.timeout(timeout_s):
                response = await self._litellm.acompletion(**kwargs)
        except Exception as exc:
            raise self._error(exc, timeout_s, kwargs) from None
        answer = parse_chat_answer(_dump(response))
        answer = split_answer(answer, enabled=tags_enabled(self._config))
        return _with_model(answer, self._chat_prefix)

    async def stream(
        self, request: ProviderChatRequest, *, timeout_s: float
    ) -> AsyncGenerator[ChatDelta]:
        """Stream through LiteLLM; closing this iterator closes LiteLLM's upstream stream."""
        kwargs = self._chat_kwargs(request, timeout_s)
        kwargs.update(stream=True, stream_options={"include_usage": True})
        deadline = asyncio.get_running_loop().time() + timeout_s
        assembler = StreamAssembler()
        think = StreamSplitter(enabled=tags_enabled(self._config))
        wrapper: Any = None
        try:
            # The deadline covers each wait, never a yield: the consumer's time between
            # deltas is its own, but the whole stream still ends by the deadline.
            async with asyncio.timeout_at(deadline):
                wrapper = await self._litellm.acompletion(**kwargs)
            iterator = wrapper.__aiter__()
            while True:
                try:
                    async with asyncio.timeout_at(deadline):
                        chunk = await iterator.__anext__()
                except StopAsyncIteration:
                    break
                for delta in think.feed(assembler.feed(_dump(chunk))):
                    yield _delta_model(delta, self._chat_prefix)
            # LiteLLM always reports a finish reason for a complete stream: none means cut.
            for delta in think.end(assembler.end(done=False)):
                yield _delta_model(delta, self._chat_prefix)
        except UpstreamError:
            raise
        except Exception as exc:
            raise self._error(exc, timeout_s, kwargs) from None
        finally:
            if wrapper is not None:
                await wrapper.aclose()

    async def embed(self, request: ProviderEmbedRequest, *, timeout_s: float) -> EmbedAnswer:
        """One ``litellm.aembedding`` call; vectors in input order."""
        if self._embed_prefix is None:
            raise UpstreamError(
                UpstreamFailure.NOT_FOUND,
                f"provider {self.name!r} ({self._config.kind}) has no embeddings API",
            )
        self._register_model(request.model)
        kwargs: dict[str, Any] = {
            "model": self._embed_prefix + request.model,
            "input": list(request.inputs),
            "timeout": timeout_s,
            "num_retries": 0,
            "max_retries": 0,
            "extra_headers": self._headers({}),
        }
        kwargs.update(self._auth())
        if request.dimensions is not None:
            kwargs["dimensions"] = request.dimensions
        kwargs.update(options_for(self._config.kind, request.provider_options, embedding=True))
        try:
            async with asyncio.timeout(timeout_s):
                response = await self._litellm.aembedding(**kwargs)
        except Exception as exc:
            raise self._error(exc, timeout_s, kwargs) from None
        answer = parse_embed_answer(_dump(response), len(request.inputs))
        model = _strip(answer.model, self._embed_prefix)
        return answer if model == answer.model else dataclasses.replace(answer, model=model)

    async def probe(self, *, timeout_s: float) -> ProbeResult:
        """Ollama: GET /api/tags. Other kinds: not probed (probing costs money and LiteLLM
        has no uniform cheap endpoint); their real calls feed their breakers."""
        if self._config.kind is not ProviderKind.OLLAMA:
            return ProbeResult(True, 0.0, error=NOT_PROBED, probed=False)
        started = time.perf_counter()
        url = f"{self._api_base}/api/tags"
        timeout = aiohttp.ClientTimeout(total=timeout_s)
        headers = dict(self._config.headers)
        basic = self._auth_headers.get("Authorization")
        auth = authorization(self._config.headers, self._api_key, basic)
        if auth:
            headers["Authorization"] = auth
        try:
            async with self._get_session().get(url, timeout=timeout, headers=headers) as resp:
                if resp.status >= 300:
                    raw = await resp.content.read(_ERROR_BODY_BYTES)
                    error = status_error(self.name, resp.status, raw, resp.headers, *self._secrets)
                    return ProbeResult(False, time.perf_counter() - started, error=error.message)
                raw = await read_capped(
                    resp,
                    provider=self.name,
                    limit=self._config.max_response_bytes,
                    secrets=self._secrets,
                )
            data = orjson.loads(raw)
        except UpstreamError as exc:
            return ProbeResult(False, time.perf_counter() - started, error=exc.message)
        except Exception as exc:  # a probe reports, never raises
            message = f"provider {self.name!r}: probe failed: {type(exc).__name__} {exc}"
            return ProbeResult(
                False, time.perf_counter() - started, snippet(message, *self._secrets)
            )
        models = data.get("models") if isinstance(data, dict) else None
        names = tuple(
            str(m.get("name")) for m in models or () if isinstance(m, dict) and m.get("name")
        )
        return ProbeResult(True, time.perf_counter() - started, models=names)

    async def aclose(self) -> None:
        """Close the probe session. LiteLLM's own HTTP clients are process-wide and stay."""
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()

    # ------------------------------------------------------------ internals

    def _auth(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self._api_key:
            out["api_key"] = self._api_key
        if self._api_base:
            out["api_base"] = self._api_base
        return out

    def _headers(self, extra: Mapping[str, str]) -> dict[str, str]:
        headers = {**extra, **self._auth_headers, **self._config.headers}
        propagate.inject(headers)
        return headers

    def _register_model(self, model: str) -> None:
        """Give LiteLLM static info on an Ollama model before its first call.

        Otherwise LiteLLM's success logging looks the model up with a *synchronous* POST to
        /api/show, blocking the event loop for that round trip (and deadlocking an upstream
        served by the same loop). Local models cost nothing, so the info is just zeros.
        """
        if self._config.kind is not ProviderKind.OLLAMA or model in self._known_models:
            return
        info = {
            "litellm_provider": "ollama",
            "input_cost_per_token": 0.0,
            "output_cost_per_token": 0.0,
        }
        self._litellm.register_model(
            {
                f"ollama_chat/{model}": {**info, "mode": "chat", "supports_function_calling": True},
                f"ollama/{model}": {**info, "mode": "embedding"},
            }
        )
        self._known_models.add(model)

    def _chat_kwargs(self, request: ProviderChatRequest, timeout_s: float) -> dict[str, Any]:
        self._register_model(request.model)
        body = build_chat_body(request, stream=False)
        for key in _STREAM_KEYS:
            body.pop(key, None)
        # providers.extra_body: LiteLLM forwards parameters it does not know to the upstream.
        body.update(self._config.extra_body)
        body.update(
            model=self._chat_prefix + request.model,
            timeout=timeout_s,
            num_retries=0,
            max_retries=0,
            # A parameter one upstream lacks (seed on Anthropic) is dropped, not an error:
            # the same request must work on every target of a route.
            drop_params=True,
            extra_headers=self._headers({}),
        )
        body.update(self._auth())
        # Extra keyword arguments (config, then the call's): LiteLLM's ollama_chat puts them
        # under Ollama's ``options``, other providers' transforms into their request body.
        body.update(self._config.extra_body)
        body.update(options_for(self._config.kind, request.provider_options))
        return body

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

    def _error(
        self, exc: BaseException, timeout_s: float, kwargs: Mapping[str, Any]
    ) -> UpstreamError:
        if isinstance(exc, TimeoutError):
            return UpstreamError(
                UpstreamFailure.TIMEOUT,
                f"provider {self.name!r} did not answer within {timeout_s:.1f}s",
            )
        sent = {k: kwargs.get(k) for k in _CALLER_TEXT_KEYS}
        return map_litellm_error(
            self.name, exc, self._litellm, *self._secrets, echoes=echo_sources(sent)
        )


def _dump(response: Any) -> Any:
    """LiteLLM's pydantic response as a plain dict (the OpenAI shape)."""
    dump = getattr(response, "model_dump", None)
    return dump() if callable(dump) else response


def _strip(model: str, prefix: str) -> str:
    return model[len(prefix) :] if prefix and model.startswith(prefix) else model


def _with_model(answer: ChatAnswer, prefix: str) -> ChatAnswer:
    model = _strip(answer.model, prefix)
    return answer if model == answer.model else dataclasses.replace(answer, model=model)


def _delta_model(delta: ChatDelta, prefix: str) -> ChatDelta:
    model = _strip(delta.model, prefix)
    return delta if model == delta.model else dataclasses.replace(delta, model=model)
