"""Config snapshots for the state tests."""

from __future__ import annotations

import hashlib
from typing import Any

import yaml

from llm_gateway_server.config.loader import ConfigSnapshot, parse_config


def base_config() -> dict[str, Any]:
    """Providers and routes the state tests price and route against.

    ``cloud``'s model ``m1`` costs 0.001 USD per completion token (input free), so a request
    with ``max_tokens=10`` is estimated at exactly 0.01 USD.
    """
    return {
        "providers": {
            "local": {
                "kind": "openai_compatible",
                "api_base": "http://127.0.0.1:9/v1",
                "locality": "local",
            },
            "cloud": {
                "kind": "openai_compatible",
                "api_base": "http://127.0.0.1:9/v1",
                "locality": "cloud",
                "prices": {"m1": {"input_per_mtok": 0, "output_per_mtok": 1000}},
            },
        },
        "routes": {
            "chat": {"targets": [{"provider": "local", "model": "x"}]},
            "paid": {"targets": [{"provider": "cloud", "model": "m1"}]},
        },
    }


def make_snapshot(**sections: Any) -> ConfigSnapshot:
    """A validated snapshot of ``base_config()`` with ``sections`` merged in."""
    config = base_config()
    config.update(sections)
    return parse_config(yaml.safe_dump(config), source="<test>", env={})


def key_entry(raw_key: str, name: str, **settings: Any) -> dict[str, Any]:
    """One ``auth.keys`` entry for ``raw_key``."""
    return {"name": name, "sha256": hashlib.sha256(raw_key.encode()).hexdigest(), **settings}


def auth_with(*entries: dict[str, Any]) -> dict[str, Any]:
    """An enabled ``auth:`` section with ``entries``."""
    return {"enabled": True, "keys": list(entries)}
