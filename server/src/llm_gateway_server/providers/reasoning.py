"""Inline reasoning: ``<think>...</think>`` at the start of the content moved to the reasoning.

DeepSeek-R1, Qwen3 and QwQ served through Ollama's or llama.cpp's OpenAI API (and vLLM
without a reasoning parser) put their thinking in the content, wrapped in ``<think>`` (or
``<thinking>``) tags. The splitter here is incremental, so a stream keeps its pace and a tag
split across chunks is still recognised: it holds back at most a tag's length of text, reads
every character once, and only looks for a tag at the start of the content, so an answer
that merely mentions ``<think>`` later is left alone.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable
from typing import Any

from llm_gateway_server.config.providers import ProviderConfig, ProviderKind
from llm_gateway_server.core.types import ChatAnswer, ChatDelta, Locality
from llm_gateway_server.providers.openai_wire import final_reason

#: Opening tags recognised at the start of the content, with their closing tags.
TAGS = {"<think>": "</think>", "<thinking>": "</thinking>"}
_LONGEST_OPEN = max(len(t) for t in TAGS)
#: Leading whitespace held while waiting for a tag; beyond it the content is plain text.
_MAX_LEADING = 1024


def tags_enabled(config: ProviderConfig) -> bool:
    """``reasoning_tags`` as set, else on for local providers (where such models run)."""
    if config.reasoning_tags is not None:
        return config.reasoning_tags
    return config.locality is Locality.LOCAL


def thinking_off(body: dict[str, Any], kind: ProviderKind) -> None:
    """Map ``reasoning_effort: none`` in a native body to what ``kind``'s servers take.

    api.openai.com has no "off": its lowest effort (``low``, which every reasoning model
    accepts). OpenAI-compatible servers (vLLM, llama.cpp, LM Studio) refuse an effort of
    ``none``; Qwen3-style chat templates turn thinking off with ``enable_thinking``.
    (The LiteLLM kinds pass ``none`` on: LiteLLM maps it to Ollama's ``think: false``,
    Anthropic without extended thinking and Gemini's zero thinking budget.)
    """
    if body.get("reasoning_effort") != "none":
        return
    if kind is ProviderKind.OPENAI:
        body["reasoning_effort"] = "low"
        return
    del body["reasoning_effort"]
    kwargs = body.get("chat_template_kwargs")
    body["chat_template_kwargs"] = {
        **(kwargs if isinstance(kwargs, dict) else {}),
        "enable_thinking": False,
    }


class _State(enum.Enum):
    START = "start"  # no tag seen yet, nothing but whitespace and a possible tag prefix
    THINKING = "thinking"  # inside the tag: text is reasoning
    AFTER = "after"  # right after the closing tag: leading whitespace is dropped
    PLAIN = "plain"  # everything from here on is content


class ThinkSplitter:
    """Splits one answer's content, fed piece by piece, into reasoning and content."""

    __slots__ = ("_close", "_found", "_held", "_state")

    def __init__(self) -> None:
        self._state = _State.START
        self._held = ""
        self._close = ""
        #: A tag was found (the caller's finish reason may need recomputing).
        self._found = False

    @property
    def found(self) -> bool:
        """True once an opening tag was recognised."""
        return self._found

    def after_reasoning(self) -> None:
        """Reasoning arrived in its own field: drop the whitespace the content starts with.

        (LiteLLM's ``ollama_chat`` already takes the tags out but leaves the blank lines
        that followed them.)
        """
        if self._state is _State.START and not self._held.strip():
            self._state, self._held = _State.AFTER, ""

    def feed(self, text: str) -> tuple[str, str]:
        """``(reasoning, content)`` that can be released now for the next piece of content."""
        reasoning: list[str] = []
        content: list[str] = []
        self._step(self._held + text, reasoning, content)
        return "".join(reasoning), "".join(content)

    def end(self) -> tuple[str, str]:
        """``(reasoning, content)`` still held at the end of the answer."""
        held, self._held = self._held, ""
        if self._state is _State.THINKING:
            return held, ""  # an unclosed tag: everything after it was thinking
        self._state = _State.PLAIN
        return "", held

    def _step(self, text: str, reasoning: list[str], content: list[str]) -> None:
        self._held = ""
        while text:
            if self._state is _State.PLAIN:
                content.append(text)
                return
            if self._state is _State.START:
                text = self._start(text, content)
            elif self._state is _State.THINKING:
                text = self._thinking(text, reasoning)
            else:
                stripped = text.lstrip()
                if stripped:
                    self._state = _State.PLAIN
                text = stripped

    def _start(self, text: str, content: list[str]) -> str:
        body = text.lstrip()
        for open_tag, close_tag in TAGS.items():
            if body.startswith(open_tag):
                self._state, self._close, self._found = _State.THINKING, close_tag, True
                return body[len(open_tag) :]
        maybe_tag = any(t.startswith(body) for t in TAGS) and len(body) < _LONGEST_OPEN
        if maybe_tag and len(text) <= _MAX_LEADING:
            self._held = text  # wait for more: "<thi" may still become "<think>"
            return ""
        self._state = _State.PLAIN
        content.append(text)
        return ""

    def _thinking(self, text: str, reasoning: list[str]) -> str:
        at = text.find(self._close)
        if at >= 0:
            reasoning.append(text[:at])
            self._state = _State.AFTER
            return text[at + len(self._close) :]
        # Hold back a tail that could be the start of the closing tag.
        keep = 0
        for n in range(min(len(self._close) - 1, len(text)), 0, -1):
            if self._close.startswith(text[-n:]):
                keep = n
                break
        reasoning.append(text[: len(text) - keep])
        self._held = text[len(text) - keep :]
        return ""


def split_answer(answer: ChatAnswer, *, enabled: bool) -> ChatAnswer:
    """``answer`` with leading think tags moved from its content to its reasoning.

    Raises:
        UpstreamError: EMPTY_ANSWER when nothing but an empty think block was sent.
    """
    if not enabled or not answer.content:
        return answer
    splitter = ThinkSplitter()
    if answer.reasoning_content:
        splitter.after_reasoning()
    reasoning, content = splitter.feed(answer.content)
    tail_reasoning, tail_content = splitter.end()
    content += tail_content
    if content == answer.content:
        return answer
    reasoning = answer.reasoning_content + reasoning + tail_reasoning
    finish = final_reason(answer.finish_reason, bool(content), bool(reasoning), answer.tool_calls)
    return dataclasses.replace(
        answer, content=content, reasoning_content=reasoning, finish_reason=finish
    )


class StreamSplitter:
    """Applies a ``ThinkSplitter`` to the deltas of one stream (a pass-through when off)."""

    __slots__ = ("_calls", "_content", "_enabled", "_model", "_reasoning", "_splitter")

    def __init__(self, *, enabled: bool) -> None:
        self._enabled = enabled
        self._splitter = ThinkSplitter()
        self._content = self._reasoning = self._calls = False
        self._model = ""

    def feed(self, deltas: Iterable[ChatDelta]) -> list[ChatDelta]:
        """The deltas to send for ``deltas`` (text held back at a possible tag boundary).

        Raises:
            UpstreamError: EMPTY_ANSWER when the stream ends having sent nothing but an
                empty think block.
        """
        if not self._enabled:
            return deltas if isinstance(deltas, list) else list(deltas)
        out: list[ChatDelta] = []
        for delta in deltas:
            self._model = delta.model or self._model
            if delta.reasoning_content:
                self._splitter.after_reasoning()
            reasoning, content = self._splitter.feed(delta.content) if delta.content else ("", "")
            reasoning = delta.reasoning_content + reasoning
            if delta.finish_reason is None:
                if reasoning or content or delta.tool_calls:
                    out.append(self._payload(delta, reasoning, content))
                continue
            if delta.has_payload:
                payload = ChatDelta(tool_calls=delta.tool_calls, model=delta.model)
                out.append(self._payload(payload, reasoning, content))
                delta = dataclasses.replace(delta, content="", reasoning_content="", tool_calls=())
            out.extend(self._flush())
            out.append(self._final(delta))
        return out

    def end(self, final: ChatDelta | None) -> list[ChatDelta]:
        """What to send at the end of the stream: held text, then ``final`` if any."""
        if not self._enabled:
            return [final] if final is not None else []
        out = self._flush()
        if final is not None:
            out.append(self._final(final))
        return out

    def _payload(self, delta: ChatDelta, reasoning: str, content: str) -> ChatDelta:
        self._content |= bool(content)
        self._reasoning |= bool(reasoning)
        self._calls |= bool(delta.tool_calls)
        if (reasoning, content) == (delta.reasoning_content, delta.content):
            return delta
        return dataclasses.replace(delta, content=content, reasoning_content=reasoning)

    def _flush(self) -> list[ChatDelta]:
        reasoning, content = self._splitter.end()
        if not (reasoning or content):
            return []
        return [self._payload(ChatDelta(model=self._model), reasoning, content)]

    def _final(self, delta: ChatDelta) -> ChatDelta:
        if not self._splitter.found or delta.finish_reason is None:
            return delta
        finish = final_reason(delta.finish_reason, self._content, self._reasoning, self._calls)
        return (
            delta
            if finish is delta.finish_reason
            else dataclasses.replace(delta, finish_reason=finish)
        )
