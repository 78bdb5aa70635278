"""The native adapter for OpenAI-compatible servers: aiohttp, orjson and a small SSE parser.

Most traffic goes to local OpenAI-compatible servers (Ollama's /v1, LM Studio, llama.cpp,
vLLM), so this path avoids LiteLLM's per-call overhead entirely.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from typing import Any

import aiohttp
import orjson
from opentelemetry import propagate

from llm_gateway_server.config.providers import ProviderConfig, ProviderKind
from llm_gateway_server.core.assembly import AnswerBuilder, coalesce
from llm_gateway_server.core.errors import UpstreamError, UpstreamFailure
from llm_gateway_server.core.types import (
    ChatAnswer,
    ChatDelta,
    EmbedAnswer,
    ProbeResult,
    ProviderChatRequest,
    ProviderEmbedRequest,
)
from llm_gateway_server.providers.openai_wire import (
    StreamAssembler,
    build_chat_body,
    build_embed_body,
    parse_chat_answer,
    parse_embed_answer,
)
from llm_gateway_server.providers.sse import DONE, SSEEvent, SSEParser
from llm_gateway_server.providers.upstream_errors import (
    error_text,
    failure_for_status,
    snippet,
    status_error,
)

#: Default base URL of kind ``openai``.
OPENAI_API_BASE = "https://api.openai.com/v1"
#: Connections per provider when ``max_in_flight`` is unlimited.
_DEFAULT_POOL = 128
#: Spare connections beyond ``max_in_flight`` (probes, streams still draining).
_SPARE_CONNECTIONS = 4
#: Upper bound on the error body read for classification.
_ERROR_BODY_BYTES = 64 * 1024
#: How long to wait for the end of a body after ``[DONE]`` so the connection stays reusable.
_DRAIN_S = 0.25


class OpenAICompatibleProvider:
    """A provider speaking OpenAI's /chat/completions, /embeddings and /models over aiohttp.

    One ClientSession (and TCPConnector pool, keep-alive) per provider, created lazily inside
    the running loop, so constructing a provider needs no loop.
    """

    def __init__(self, name: str, config: ProviderConfig, *, api_key: str | None) -> None:
        """Args:
        name: The provider's name in the config (used in error messages).
        config: Its config section.
        api_key: Sent as ``Authorization: Bearer``; masked in every message.
        """
        self.name = name
        self._config = config
        self._api_key = api_key or ""
        base = config.api_base or (OPENAI_API_BASE if config.kind is ProviderKind.OPENAI else "")
        if not base:
            raise ValueError(f"provider {name!r}: api_base is required for kind {config.kind}")
        base = base.rstrip("/")
        self._chat_url = f"{base}/chat/completions"
        self._embed_url = f"{base}/embeddings"
        self._models_url = f"{base}/models"
        self._max_tokens_field = (
            "max_completion_tokens" if config.kind is ProviderKind.OPENAI else "max_tokens"
        )
        headers = {"Content-Type": "application/json"}
        headers.update(config.headers)
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._headers = headers
        pool = config.max_in_flight + _SPARE_CONNECTIONS if config.max_in_flight else _DEFAULT_POOL
        self._pool_size = pool
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # ------------------------------------------------------------ Provider API

    async def chat(self, request: ProviderChatRequest, *, timeout_s: float) -> ChatAnswer:
        """POST /chat/completions and return the parsed answer."""
        if self._config.stream_unary:
            return await self._chat_by_stream(request, timeout_s=timeout_s)
        body = build_chat_body(request, stream=False, max_tokens_field=self._max_tokens_field)
        body.update(self._config.extra_body)
        async with self._request("POST", self._chat_url, body, {}, timeout_s) as resp:
            raw = await resp.read()
        return parse_chat_answer(_loads(raw))

    async def _chat_by_stream(
        self, request: ProviderChatRequest, *, timeout_s: float
    ) -> ChatAnswer:
        # Streamed upstream, one answer to the caller: a cancelled or timed-out call drops a
        # stream, which every server notices at once (llama.cpp's server keeps generating
        # for a dropped non-streaming request).
        builder = AnswerBuilder()
        async with contextlib.aclosing(self.stream(request, timeout_s=timeout_s)) as deltas:
            async for delta in deltas:
                builder.add(delta)
        # The stream's last delta already carries the final finish reason (reasoning-only,
        # tool calls) and an empty stream already raised EMPTY_ANSWER.
        return builder.answer()

    async def stream(
        self, request: ProviderChatRequest, *, timeout_s: float
    ) -> AsyncGenerator[ChatDelta]:
        """POST /chat/completions with ``stream: true`` and yield deltas as chunks arrive."""
        body = build_chat_body(request, stream=True, max_tokens_field=self._max_tokens_field)
        body.update(self._config.extra_body)
        assembler = StreamAssembler()
        parser = SSEParser()
        headers = {"Accept": "text/event-stream"}
        async with self._request("POST", self._chat_url, body, headers, timeout_s) as resp:
            done = False
            async for chunk in resp.content.iter_any():
                batch, done, error = self._batch(assembler, parser.feed(chunk))
                for delta in coalesce(batch):
                    yield delta
                if error is not None:
                    raise error
                if done:
                    break
            else:
                batch, done, error = self._batch(assembler, parser.flush())
                for delta in coalesce(batch):
                    yield delta
                if error is not None:
                    raise error
            final = assembler.end(done=done)
            if final is not None:
                yield final
            if done and not resp.content.at_eof():
                await _drain(resp)

    def _batch(
        self, assembler: StreamAssembler, events: list[SSEEvent]
    ) -> tuple[list[ChatDelta], bool, UpstreamError | None]:
        """The deltas of the events of one read, whether the stream's end was among them, and
        the error of a bad event (raised after the deltas before it were sent)."""
        batch: list[ChatDelta] = []
        try:
            for delta in self._deltas(assembler, events):
                if delta is None:
                    return batch, True, None
                batch.append(delta)
        except UpstreamError as exc:
            return batch, False, exc
        return batch, False, None

    async def embed(self, request: ProviderEmbedRequest, *, timeout_s: float) -> EmbedAnswer:
        """POST /embeddings; vectors come back in input order."""
        body = build_embed_body(request)
        async with self._request("POST", self._embed_url, body, {}, timeout_s) as resp:
            raw = await resp.read()
        return parse_embed_answer(_loads(raw), len(request.inputs))

    async def probe(self, *, timeout_s: float) -> ProbeResult:
        """GET /models; never raises."""
        started = time.perf_counter()
        try:
            async with self._request("GET", self._models_url, None, {}, timeout_s) as resp:
                raw = await resp.read()
            data: Any = _loads(raw)
        except UpstreamError as exc:
            return ProbeResult(False, time.perf_counter() - started, error=exc.message)
        except Exception as exc:  # a probe reports, never raises
            message = snippet(f"{type(exc).__name__}: {exc}", self._api_key)
            return ProbeResult(False, time.perf_counter() - started, error=message)
        models = data.get("data") if isinstance(data, dict) else None
        names = tuple(
            str(m["id"]) for m in models or () if isinstance(m, dict) and m.get("id") is not None
        )
        return ProbeResult(True, time.perf_counter() - started, models=names)

    async def aclose(self) -> None:
        """Close the connection pool (only from the loop that created it)."""
        session, self._session = self._session, None
        if session is not None and not session.closed and self._loop is _running_loop():
            await session.close()

    # ------------------------------------------------------------ internals

    def _get_session(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._loop is not loop:
            connector = aiohttp.TCPConnector(
                limit=self._pool_size, keepalive_timeout=30.0, ttl_dns_cache=300
            )
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=aiohttp.ClientTimeout(total=None)
            )
            self._loop = loop
        return self._session

    @contextlib.asynccontextmanager
    async def _request(
        self,
        method: str,
        url: str,
        body: dict[str, Any] | None,
        extra_headers: dict[str, str],
        timeout_s: float,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """One upstream request; every failure leaves as a classified UpstreamError.

        A non-2xx status is raised before the body is yielded. Exiting early (the caller
        closed a stream, or was cancelled) closes the connection so the upstream sees it.
        """
        headers = {**extra_headers, **self._headers}
        propagate.inject(headers)
        timeout = aiohttp.ClientTimeout(
            total=timeout_s,
            connect=min(self._config.connect_timeout_s, timeout_s),
            # aiohttp rounds timeouts above this up to whole seconds: keep the deadline exact.
            ceil_threshold=timeout_s + 1.0,
        )
        data = orjson.dumps(body) if body is not None else None
        in_body = False
        try:
            async with self._get_session().request(
                method, url, data=data, headers=headers, timeout=timeout
            ) as resp:
                if resp.status >= 300:
                    error_body = await resp.content.read(_ERROR_BODY_BYTES)
                    raise status_error(
                        self.name, resp.status, error_body, resp.headers, self._api_key
                    )
                in_body = True
                try:
                    yield resp
                except BaseException:
                    resp.close()
                    raise
        except UpstreamError:
            raise
        except TimeoutError:
            raise UpstreamError(
                UpstreamFailure.TIMEOUT,
                f"provider {self.name!r} did not answer within {timeout_s:.1f}s",
            ) from None
        except aiohttp.ClientPayloadError as exc:
            raise self._error(UpstreamFailure.BAD_RESPONSE, "the answer was cut off", exc) from None
        except aiohttp.ClientConnectionError as exc:
            if in_body:
                raise self._error(
                    UpstreamFailure.BAD_RESPONSE, "the connection dropped mid-answer", exc
                ) from None
            raise self._error(UpstreamFailure.CONNECT, "cannot connect", exc) from None
        except aiohttp.ClientError as exc:
            raise self._error(UpstreamFailure.BAD_RESPONSE, "the request failed", exc) from None

    def _deltas(
        self, assembler: StreamAssembler, events: list[SSEEvent]
    ) -> Iterator[ChatDelta | None]:
        """Deltas of a batch of events, one by one; None marks ``[DONE]``."""
        for event in events:
            if event.data == DONE:
                yield None
                return
            yield from assembler.feed(self._chunk(event.data))

    def _chunk(self, data: str) -> Any:
        """One SSE payload as JSON; an ``error`` object mid-stream becomes an UpstreamError."""
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise UpstreamError(
                UpstreamFailure.BAD_RESPONSE,
                f"malformed upstream stream chunk: not JSON ({snippet(data[:200], self._api_key)})",
            ) from None
        if isinstance(chunk, dict) and "error" in chunk and not chunk.get("choices"):
            text = error_text(data.encode())
            code = _get_code(chunk["error"])
            failure = failure_for_status(code, text) if code else UpstreamFailure.SERVER_ERROR
            raise UpstreamError(
                failure,
                f"provider {self.name!r} failed mid-stream: {snippet(text, self._api_key)}",
            )
        return chunk

    def _error(self, failure: UpstreamFailure, what: str, exc: BaseException) -> UpstreamError:
        detail = snippet(str(exc) or type(exc).__name__, self._api_key)
        return UpstreamError(failure, f"provider {self.name!r}: {what} ({detail})")


def _loads(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise UpstreamError(
            UpstreamFailure.BAD_RESPONSE,
            f"malformed upstream answer: not JSON ({snippet(raw[:200].decode(errors='replace'))})",
        ) from None


def _get_code(error: object) -> int:
    code = error.get("code") if isinstance(error, dict) else None
    return code if isinstance(code, int) and 400 <= code < 600 else 0


async def _drain(resp: aiohttp.ClientResponse) -> None:
    """Read what follows ``[DONE]`` (the chunked terminator) so keep-alive can reuse the
    connection; a server that keeps the body open just loses that connection."""
    with contextlib.suppress(Exception):
        async with asyncio.timeout(_DRAIN_S):
            while await resp.content.readany():
                pass


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
