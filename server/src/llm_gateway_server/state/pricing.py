"""Cost of one call in US dollars: config prices first, local models free, then LiteLLM's map.

LiteLLM's bundled cost map (``model_prices_and_context_window_backup.json``, the file
LiteLLM itself loads with ``LITELLM_LOCAL_MODEL_COST_MAP=True``) is read straight from the
installed package, without importing LiteLLM (which takes seconds), and only the first
time a cloud model without a configured price is priced.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import orjson

from llm_gateway_server.config.providers import ProviderConfig, ProviderKind
from llm_gateway_server.core.types import Locality, Usage

logger = logging.getLogger(__name__)

_COST_MAP_FILE = "model_prices_and_context_window_backup.json"
_cost_map: Mapping[str, Any] | None = None
_load_lock = threading.Lock()


def load_cost_map() -> Mapping[str, Any]:
    """LiteLLM's bundled cost map, read once (empty when LiteLLM is not installed)."""
    global _cost_map
    if _cost_map is not None:
        return _cost_map
    with _load_lock:
        if _cost_map is None:
            _cost_map = _read_cost_map()
    return _cost_map


def _read_cost_map() -> Mapping[str, Any]:
    # find_spec locates the package without running its (slow) __init__.
    spec = importlib.util.find_spec("litellm")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        path = Path(location) / _COST_MAP_FILE
        if path.is_file():
            loaded = orjson.loads(path.read_bytes())
            if isinstance(loaded, dict):
                return loaded
    logger.warning("LiteLLM's cost map was not found: cloud calls without prices cost 0")
    return {}


def needs_cost_map(providers: Iterable[ProviderConfig]) -> bool:
    """True when some cloud provider may be priced from LiteLLM's map."""
    return any(p.locality is Locality.CLOUD for p in providers)


def _candidates(provider: ProviderConfig, model: str) -> tuple[str, ...]:
    tail = model.split("/", 1)[1] if "/" in model else model
    if provider.kind is ProviderKind.GEMINI:
        return (f"gemini/{model}", model)
    if provider.kind is ProviderKind.ANTHROPIC:
        return (model, f"anthropic/{model}")
    if provider.kind is ProviderKind.OLLAMA:
        return (f"ollama/{model}", model)
    return (model, f"openai/{model}", tail)


def _map_entry(provider: ProviderConfig, model: str) -> Mapping[str, Any] | None:
    cost_map = load_cost_map()
    for name in _candidates(provider, model):
        entry = cost_map.get(name)
        if isinstance(entry, dict) and entry.get("input_cost_per_token") is not None:
            return entry
    return None


def cost_usd(provider: ProviderConfig, kind: str, model: str, usage: Usage) -> float | None:
    """The cost of one call, or ``None`` when its price is unknown.

    Args:
        provider: The provider that answered.
        kind: ``chat`` or ``embedding`` (embeddings have no output tokens).
        model: The model name sent upstream.
        usage: Token counts the upstream reported (or an estimate).
    """
    completion = 0 if kind == "embedding" else usage.completion_tokens
    price = provider.prices.get(model)
    if price is not None:
        return (
            usage.prompt_tokens * price.input_per_mtok + completion * price.output_per_mtok
        ) / 1e6
    if provider.locality is Locality.LOCAL:
        return 0.0
    entry = _map_entry(provider, model)
    if entry is None:
        return None
    input_cost = float(entry.get("input_cost_per_token") or 0.0)
    output_cost = float(entry.get("output_cost_per_token") or 0.0)
    cached_cost = entry.get("cache_read_input_token_cost")
    cached = min(usage.cached_tokens, usage.prompt_tokens) if cached_cost is not None else 0
    return (
        (usage.prompt_tokens - cached) * input_cost
        + cached * float(cached_cost or 0.0)
        + completion * output_cost
    )
