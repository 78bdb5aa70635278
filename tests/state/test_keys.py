"""API keys from config: missing, unknown, valid, reloaded (memory backend)."""

from __future__ import annotations

import hashlib

import pytest

from llm_gateway_server.config.loader import ConfigError
from llm_gateway_server.core.errors import Unauthenticated
from llm_gateway_server.core.types import ANONYMOUS, Privacy
from llm_gateway_server.state import KeyPrincipal, build_state
from tests.state.snapshots import auth_with, key_entry, make_snapshot


async def test_auth_off_gives_anonymous_whatever_the_key() -> None:
    state = await build_state(make_snapshot())
    assert await state.keys.authenticate(None) == ANONYMOUS
    assert await state.keys.authenticate("anything") == ANONYMOUS


async def test_missing_and_unknown_keys_are_refused_with_their_reasons() -> None:
    state = await build_state(make_snapshot(auth=auth_with(key_entry("key-a", "team-a"))))
    with pytest.raises(Unauthenticated) as missing:
        await state.keys.authenticate(None)
    assert missing.value.reason == "API_KEY_MISSING"
    with pytest.raises(Unauthenticated) as empty:
        await state.keys.authenticate("")
    assert empty.value.reason == "API_KEY_MISSING"
    with pytest.raises(Unauthenticated) as unknown:
        await state.keys.authenticate("key-b")
    assert unknown.value.reason == "API_KEY_INVALID"
    assert "key-b" not in unknown.value.message


async def test_valid_key_becomes_its_principal() -> None:
    entry = key_entry(
        "key-a",
        "team-a",
        routes=["chat"],
        max_privacy="strict",
        rpm=600,
        tpm=200000,
        budget_usd=50,
        budget_period="day",
        route_limits={"chat": {"rpm": 60}},
    )
    state = await build_state(make_snapshot(auth=auth_with(entry)))
    principal = await state.keys.authenticate("key-a")
    assert isinstance(principal, KeyPrincipal)
    assert principal.tenant == "team-a"
    assert principal.routes == frozenset({"chat"})
    assert principal.max_privacy is Privacy.STRICT
    assert (principal.rpm, principal.tpm, principal.budget_usd) == (600, 200000, 50)
    assert principal.budget_period == "day"
    assert dict(principal.route_limits)["chat"].rpm == 60


async def test_uppercase_digest_in_config_matches() -> None:
    digest = hashlib.sha256(b"key-a").hexdigest().upper()
    state = await build_state(
        make_snapshot(auth={"enabled": True, "keys": [{"name": "t", "sha256": digest}]})
    )
    assert (await state.keys.authenticate("key-a")).tenant == "t"


async def test_swap_adds_and_revokes_keys() -> None:
    state = await build_state(make_snapshot(auth=auth_with(key_entry("key-a", "team-a"))))
    state.swap(make_snapshot(auth=auth_with(key_entry("key-b", "team-b"))))
    assert (await state.keys.authenticate("key-b")).tenant == "team-b"
    with pytest.raises(Unauthenticated):
        await state.keys.authenticate("key-a")


def test_the_same_key_twice_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="the same key"):
        make_snapshot(auth=auth_with(key_entry("k", "a"), key_entry("k", "b")))
