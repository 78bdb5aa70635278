"""Removes credentials and echoes of a request from text bound for a log, an error or a span.

A configured secret can come back from an upstream in more forms than the one in the config:
percent-encoded (in a URL), JSON-escaped (an echoed body), or as the ``Basic`` value of URL
userinfo. ``secret_forms`` and ``url_secrets`` list those forms once, at load, so masking
is plain substring replacement.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus, unquote, urlsplit

# user:password@ in URLs, bearer/basic tokens, well-known API key shapes, key=... params.
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s:@]+:[^/\s@]*@"), r"\1***@"),
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s:@]+@"), r"\1***@"),
    (re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{6,}"), r"\1***"),
    (re.compile(r"(?i)\b(basic\s+)[A-Za-z0-9+/]{6,}={0,2}"), r"\1***"),
    (re.compile(r"\b(sk|pk|rk)-[A-Za-z0-9_-]{8,}"), "***"),
    (re.compile(r"\bsk-ant-[A-Za-z0-9_-]{8,}"), "***"),
    (re.compile(r"\bAIza[0-9A-Za-z_-]{20,}"), "***"),
    (re.compile(r"(?i)([?&](?:key|api_key|apikey|token|access_token)=)[^&\s]+"), r"\1***"),
    (
        re.compile(
            r"(?i)((?:x-api-key|api[_-]?key|authorization)[\"']?\s*[:=]\s*[\"']?)[^\s\"',}]+"
        ),
        r"\1***",
    ),
)

#: Header names whose values are never secret (every other configured header value is).
PLAIN_HEADERS = frozenset(
    {"accept", "content-type", "user-agent", "accept-encoding", "accept-language", "connection"}
)
#: Secrets shorter than this are not masked by value (they would mask ordinary words).
MIN_SECRET_CHARS = 4
#: A run of this many characters shared with the request counts as an echo of it.
_ECHO_WINDOW = 24
#: Request texts shorter than this are not looked for (ordinary words and short names).
_MIN_ECHO_CHARS = 8
#: Characters of request text scanned for echoes at most (~40 ms at worst, on an error
#: path); an echo is of the start of a text, so each text is scanned from its start.
_MAX_ECHO_SCAN = 1024 * 1024
_ECHO_MARK = "[request text]"


def redact(text: str, *secrets: str) -> str:
    """Return ``text`` with credentials masked.

    Args:
        text: Any text that may have come from an upstream or an exception.
        *secrets: Exact secret values known to the caller (every form from
            ``secret_forms``), masked too; longest first, so no form is half-masked.
    """
    for secret in sorted(secrets, key=len, reverse=True):
        if secret and len(secret) >= MIN_SECRET_CHARS:
            text = text.replace(secret, "***")
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def secret_forms(*values: str) -> tuple[str, ...]:
    """Each secret as it may appear on the wire: raw, percent-encoded, JSON-escaped."""
    forms: dict[str, None] = {}
    for value in values:
        if len(value) < MIN_SECRET_CHARS:
            continue
        for form in (value, quote(value, safe=""), quote_plus(value), json.dumps(value)[1:-1]):
            forms[form] = None
    return tuple(forms)


def url_secrets(url: str | None) -> tuple[str, ...]:
    """The credentials in a URL's userinfo in every form: as written, decoded, and as the
    ``Basic`` value an HTTP client derives from them."""
    if not url or "@" not in url:
        return ()
    try:
        parts = urlsplit(url)
    except ValueError:
        return ()
    user, password = parts.username or "", parts.password or ""
    if not user and not password:
        return ()
    values: list[str] = []
    for u, p in ((user, password), (unquote(user), unquote(password))):
        pair = f"{u}:{p}"
        values += [u, p, pair, base64.b64encode(pair.encode()).decode("ascii")]
    # latin-1 is what aiohttp's BasicAuth encodes with by default.
    with_latin1 = f"{unquote(user)}:{unquote(password)}".encode("latin-1", errors="ignore")
    values.append(base64.b64encode(with_latin1).decode("ascii"))
    return secret_forms(*values)


def mask_echoes(text: str, sources: Iterable[str]) -> str:
    """``text`` with any run it shares with the request's own texts replaced by a marker.

    A source of at most ~36 characters is masked where it appears whole (raw or
    JSON-escaped); a longer one wherever ``text`` shares a run of 36 characters or more
    with it, extended to the whole shared run. The cost is linear in the sources (one
    dictionary lookup per 12 characters) and in ``text``, which callers keep short.
    """
    spans: list[tuple[int, int]] = []
    grams: dict[str, list[int]] | None = None
    budget = _MAX_ECHO_SCAN
    for source in _echo_forms(sources):
        if len(source) < _ECHO_WINDOW + _ECHO_WINDOW // 2:
            start = text.find(source)
            while start >= 0:
                spans.append((start, start + len(source)))
                start = text.find(source, start + len(source))
            continue
        if budget <= 0:
            break
        source = source[:budget]
        budget -= len(source)
        if grams is None:
            grams = _grams(text)
        spans += _shared_runs(text, source, grams)
    return _replace(text, spans) if spans else text


def _echo_forms(sources: Iterable[str]) -> Iterable[str]:
    for source in sources:
        if len(source) < _MIN_ECHO_CHARS:
            continue
        yield source
        escaped = json.dumps(source, ensure_ascii=False)[1:-1]
        if escaped != source:
            yield escaped


def _grams(text: str) -> dict[str, list[int]]:
    grams: dict[str, list[int]] = {}
    for i in range(len(text) - _ECHO_WINDOW + 1):
        grams.setdefault(text[i : i + _ECHO_WINDOW], []).append(i)
    return grams


def _shared_runs(text: str, source: str, grams: dict[str, list[int]]) -> list[tuple[int, int]]:
    # Every run of >= window + stride - 1 shared characters holds a window of the source
    # that starts at a multiple of the stride: looking those up finds every such run.
    stride = _ECHO_WINDOW // 2
    runs: list[tuple[int, int]] = []
    # The end of the run already found on each diagonal (text offset - source offset), so
    # a long run is extended once, not once per window inside it.
    ends: dict[int, int] = {}
    for p in range(0, len(source) - _ECHO_WINDOW + 1, stride):
        for j in grams.get(source[p : p + _ECHO_WINDOW], ()):
            if j + _ECHO_WINDOW <= ends.get(j - p, -1):
                continue
            left, right = j, j + _ECHO_WINDOW
            back = p
            while left > 0 and back > 0 and text[left - 1] == source[back - 1]:
                left, back = left - 1, back - 1
            fwd = p + _ECHO_WINDOW
            while right < len(text) and fwd < len(source) and text[right] == source[fwd]:
                right, fwd = right + 1, fwd + 1
            runs.append((left, right))
            ends[j - p] = right
    return runs


def _replace(text: str, spans: list[tuple[int, int]]) -> str:
    out: list[str] = []
    pos = 0
    for start, end in sorted(spans):
        if end <= pos:
            continue
        if start > pos:
            out.append(text[pos:start])
            out.append(_ECHO_MARK)
        elif not out or out[-1] != _ECHO_MARK:
            out.append(_ECHO_MARK)
        pos = end
    out.append(text[pos:])
    return "".join(out)
