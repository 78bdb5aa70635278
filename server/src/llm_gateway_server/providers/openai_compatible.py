"""The native adapter for OpenAI-compatible servers: aiohttp, orjson and a small SSE parser.

Most traffic goes to local OpenAI-compatible servers (Ollama's /v1, LM Studio, llama.cpp,
vLLM), so this path avoids LiteLLM's per-call overhead entirely.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator
from typing import Any

import aiohttp
import orjson
from opentelemetry import propagate

from llm_gateway_server.config.providers import ProviderConfig, ProviderKind
from llm_gateway_server.core.assembly import AnswerBuilder, coalesce
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
from llm_gateway_server.providers.openai_wire import (
    StreamAssembler,
    build_chat_body,
    build_embed_body,
    parse_chat_answer,
    parse_embed_answer,
)
from llm_gateway_server.providers.options import options_for
from llm_gateway_server.providers.reasoning import (
    StreamSplitter,
    split_answer,
    tags_enabled,
    thinking_off,
)
from llm_gateway_server.providers.sse import DONE, EventTooLarge, SSEEvent, SSEParser
from llm_gateway_server.providers.upstream_errors import (
    echo_sources,
    error_text,
    failure_for_status,
    snippet,
    status_error,
)
from llm_gateway_server.providers.upstream_http import (
    DRAIN_S,
    PoolWaitTimeout,
    PoolWatch,
    authorization,
    client_timeout,
    drain,
    pool_limit,
    pool_trace,
    read_capped,
    read_some,
    running_loop,
    split_credentials,
    too_large,
)

#: Default base URL of kind ``openai``.
OPENAI_API_BASE = "https://api.openai.com/v1"
#: Upper bound on the error body read for classification.
_ERROR_BODY_BYTES = 64 * 1024
#: Room per embedding input beyond ``max_response_bytes`` (a 3072-dimension vector is about
#: 70 KB of JSON).
_EMBED_BYTES_PER_INPUT = 128 * 1024
#: How long to wait, once the finish reason came, for the usage (when asked) and ``[DONE]``:
#: some servers send both and hold the connection open, others never send them.
_FINISH_GRACE_S = 0.5


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
        endpoint = split_credentials(base)
        base = endpoint.base
        self._chat_url = f"{base}/chat/completions"
        self._embed_url = f"{base}/embeddings"
        self._models_url = f"{base}/models"
        self._max_tokens_field = (
            "max_completion_tokens" if config.kind is ProviderKind.OPENAI else "max_tokens"
        )
        headers = {"Content-Type": "application/json"}
        auth = authorization(config.headers, api_key, endpoint.basic_auth)
        if auth:
            headers["Authorization"] = auth
        headers.update(config.headers)
        self._headers = headers
        #: Every form of every credential this provider holds, masked in its messages.
        self._secrets = (
            *secret_forms(self._api_key, *config.headers.values()),
            *url_secrets(config.api_base),
        )
        self._pool_size = pool_limit(config)
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # ------------------------------------------------------------ Provider API

    async def chat(self, request: ProviderChatRequest, *, timeout_s: float) -> ChatAnswer:
        """POST /chat/completions and return the parsed answer."""
        if self._config.stream_unary:
            return await self._chat_by_stream(request, timeout_s=timeout_s)
        body = self._chat_body(request, stream=False)
        async with self._request("POST", self._chat_url, body, {}, timeout_s) as resp:
            raw = await self._read(resp, body)
        answer = parse_chat_answer(self._loads(raw, body))
        return split_answer(answer, enabled=tags_enabled(self._config))

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
        """POST /chat/completions with ``stream: true`` and yield deltas as chunks arrive.

        The stream is complete at its finish reason (and usage, when asked for): past that,
        ``[DONE]`` is waited for a short grace only, then the connection is closed, so a
        server that holds it open never turns a whole answer into a cut one.
        """
        body = self._chat_body(request, stream=True)
        options = body.get("stream_options")
        wants_usage = isinstance(options, dict) and bool(options.get("include_usage"))
        assembler = StreamAssembler()
        think = StreamSplitter(enabled=tags_enabled(self._config))
        parser = SSEParser(self._config.max_event_bytes)
        limit = self._config.max_response_bytes
        headers = {"Accept": "text/event-stream"}
        async with self._request("POST", self._chat_url, body, headers, timeout_s) as resp:
            done = held_open = False
            received = 0
            loop = asyncio.get_running_loop()
            # Once the finish reason came: until when to wait for usage and [DONE], in all
            # (keep-alive comments after the finish must not extend it).
            grace_until: float | None = None
            while not done:
                if grace_until is None and assembler.finished:
                    grace = _FINISH_GRACE_S if wants_usage and not assembler.has_usage else DRAIN_S
                    grace_until = loop.time() + grace
                remaining = None if grace_until is None else max(grace_until - loop.time(), 0.0)
                chunk = await read_some(resp, remaining)
                if chunk is None:  # finished, and nothing more within the grace
                    held_open = True
                    break
                if not chunk:  # end of body
                    batch, done, error = self._batch(assembler, body, parser.flush)
                else:
                    received += len(chunk)
                    if received > limit:
                        raise too_large(self.name, "a stream", limit, "max_response_bytes")
                    feed = functools.partial(parser.feed, chunk)
                    batch, done, error = self._batch(assembler, body, feed)
                for delta in coalesce(think.feed(batch)):
                    yield delta
                if error is not None:
                    raise error
                if not chunk:
                    break
            for delta in think.end(assembler.end(done=done)):
                yield delta
            if held_open:
                resp.close()  # the body never ended: this connection cannot be reused
            elif done and not resp.content.at_eof():
                await drain(resp)

    def _batch(
        self,
        assembler: StreamAssembler,
        body: dict[str, Any],
        parse: Callable[[], list[SSEEvent]],
    ) -> tuple[list[ChatDelta], bool, UpstreamError | None]:
        """The deltas of the events of one read, whether the stream's end was among them, and
        the error of a bad or oversized event (raised after the deltas before it were sent)."""
        overflow: UpstreamError | None = None
        try:
            events = parse()
        except EventTooLarge as exc:
            events = exc.events
            overflow = too_large(self.name, f"an SSE {exc.what}", exc.limit, "max_event_bytes")
        batch: list[ChatDelta] = []
        try:
            for delta in self._deltas(assembler, events, body):
                if delta is None:
                    return batch, True, None
                batch.append(delta)
        except UpstreamError as exc:
            return batch, False, exc
        return batch, False, overflow

    async def embed(self, request: ProviderEmbedRequest, *, timeout_s: float) -> EmbedAnswer:
        """POST /embeddings; vectors come back in input order."""
        body = build_embed_body(request)
        body.update(options_for(self._config.kind, request.provider_options, embedding=True))
        async with self._request("POST", self._embed_url, body, {}, timeout_s) as resp:
            # A batch of large vectors may exceed the cap for answers: each input adds room.
            extra = len(request.inputs) * _EMBED_BYTES_PER_INPUT
            raw = await self._read(resp, body, extra=extra)
        return parse_embed_answer(self._loads(raw, body), len(request.inputs))

    async def probe(self, *, timeout_s: float) -> ProbeResult:
        """GET /models; never raises."""
        started = time.perf_counter()
        try:
            async with self._request("GET", self._models_url, None, {}, timeout_s) as resp:
                raw = await self._read(resp, None)
            data: Any = self._loads(raw, None)
        except UpstreamError as exc:
            return ProbeResult(False, time.perf_counter() - started, error=exc.message)
        except Exception as exc:  # a probe reports, never raises
            message = snippet(f"{type(exc).__name__}: {exc}", *self._secrets)
            return ProbeResult(False, time.perf_counter() - started, error=message)
        models = data.get("data") if isinstance(data, dict) else None
        names = tuple(
            str(m["id"]) for m in models or () if isinstance(m, dict) and m.get("id") is not None
        )
        # llama.cpp's server answers under any model name: its list proves nothing.
        any_model = any(
            isinstance(m, dict) and m.get("owned_by") == "llamacpp" for m in models or ()
        )
        return ProbeResult(True, time.perf_counter() - started, models=names, any_model=any_model)

    async def aclose(self) -> None:
        """Close the connection pool (only from the loop that created it)."""
        session, self._session = self._session, None
        if session is not None and not session.closed and self._loop is running_loop():
            await session.close()

    # ------------------------------------------------------------ internals

    def _chat_body(self, request: ProviderChatRequest, *, stream: bool) -> dict[str, Any]:
        """The upstream body: the request, ``extra_body``, then the caller's options."""
        body = build_chat_body(request, stream=stream, max_tokens_field=self._max_tokens_field)
        body.update(self._config.extra_body)
        body.update(options_for(self._config.kind, request.provider_options))
        thinking_off(body, self._config.kind)
        return body

    def _get_session(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._loop is not loop:
            connector = aiohttp.TCPConnector(
                limit=self._pool_size, keepalive_timeout=30.0, ttl_dns_cache=300
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=None),
                # Only a bounded pool queues; an unlimited one needs no watching.
                trace_configs=[pool_trace()] if self._pool_size else None,
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
        data = orjson.dumps(body) if body is not None else None
        watch = PoolWatch() if self._pool_size else None
        in_body = False
        try:
            async with self._get_session().request(
                method,
                url,
                data=data,
                headers=headers,
                timeout=client_timeout(self._config, timeout_s),
                trace_request_ctx=watch,
            ) as resp:
                if resp.status >= 300:
                    error_body = await resp.content.read(_ERROR_BODY_BYTES)
                    raise status_error(
                        self.name,
                        resp.status,
                        error_body,
                        resp.headers,
                        *self._secrets,
                        echoes=echo_sources(body),
                    )
                in_body = True
                try:
                    yield resp
                except BaseException:
                    resp.close()
                    raise
        except UpstreamError:
            raise
        except aiohttp.ConnectionTimeoutError:  # before TimeoutError, which it also is
            connect_s = min(self._config.connect_timeout_s, timeout_s)
            raise UpstreamError(
                UpstreamFailure.CONNECT,
                f"provider {self.name!r}: cannot connect within {connect_s:.1f}s"
                " (connect_timeout_s)",
            ) from None
        except TimeoutError:
            raise self._timeout(watch, timeout_s) from None
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
        except ValueError as exc:
            if in_body:
                raise
            # aiohttp refuses some requests per call (a header value it will not send): a
            # classified failure, never a traceback per call.
            what = "the request was refused"
            raise self._error(UpstreamFailure.BAD_RESPONSE, what, exc) from None

    def _timeout(self, watch: PoolWatch | None, timeout_s: float) -> UpstreamError:
        waited = watch.waited_s() if watch is not None else None
        if waited is not None:
            return PoolWaitTimeout(self.name, waited, self._pool_size)
        return UpstreamError(
            UpstreamFailure.TIMEOUT,
            f"provider {self.name!r} did not answer within {timeout_s:.1f}s",
        )

    async def _read(
        self, resp: aiohttp.ClientResponse, body: dict[str, Any] | None, *, extra: int = 0
    ) -> bytes:
        return await read_capped(
            resp,
            provider=self.name,
            limit=self._config.max_response_bytes + extra,
            secrets=self._secrets,
            echoes=echo_sources(body),
        )

    def _deltas(
        self, assembler: StreamAssembler, events: list[SSEEvent], body: dict[str, Any]
    ) -> Iterator[ChatDelta | None]:
        """Deltas of a batch of events, one by one; None marks ``[DONE]``."""
        for event in events:
            if event.data == DONE:
                yield None
                return
            yield from assembler.feed(self._chunk(event.data, body))

    def _chunk(self, data: str, body: dict[str, Any]) -> Any:
        """One SSE payload as JSON; an ``error`` object mid-stream becomes an UpstreamError."""
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise UpstreamError(
                UpstreamFailure.BAD_RESPONSE,
                f"malformed upstream stream chunk: not JSON ({self._clean(data[:2000], body)})",
            ) from None
        if isinstance(chunk, dict) and "error" in chunk and not chunk.get("choices"):
            text = error_text(data.encode())
            code = _get_code(chunk["error"])
            failure = failure_for_status(code, text) if code else UpstreamFailure.SERVER_ERROR
            raise UpstreamError(
                failure,
                f"provider {self.name!r} failed mid-stream: {self._clean(text, body)}",
            )
        return chunk

    def _loads(self, raw: bytes, body: dict[str, Any] | None) -> Any:
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            text = raw[:2000].decode(errors="replace")
            raise UpstreamError(
                UpstreamFailure.BAD_RESPONSE,
                f"malformed upstream answer: not JSON ({self._clean(text, body)})",
            ) from None

    def _clean(self, text: str, body: dict[str, Any] | None) -> str:
        return snippet(text, *self._secrets, echoes=echo_sources(body))

    def _error(self, failure: UpstreamFailure, what: str, exc: BaseException) -> UpstreamError:
        detail = snippet(str(exc) or type(exc).__name__, *self._secrets)
        return UpstreamError(failure, f"provider {self.name!r}: {what} ({detail})")


def _get_code(error: object) -> int:
    code = error.get("code") if isinstance(error, dict) else None
    return code if isinstance(code, int) and 400 <= code < 600 else 0
