"""Session fixtures running real llama.cpp servers: a tiny generated model, and the bundled one."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path

import pytest

from .bundled import BUNDLED_ALIAS, BUNDLED_ARGS, ensure_bundled_model
from .bundled import bundled_model_path as bundled_model_path_now
from .llama import (
    CHAT_ARGS,
    EMBED_ARGS,
    MODEL_ALIAS,
    LlamaPaths,
    LlamaServer,
    LlamaUnavailableError,
    ensure_llama_built,
    skip_requested,
)
from .llama import llama_paths as llama_paths_now
from .tiny_model import cached_tiny_model


@functools.cache
def _llama_build() -> LlamaPaths | LlamaUnavailableError:
    # Cached so a failed build is reported once per session instead of retried by each fixture.
    try:
        return ensure_llama_built()
    except LlamaUnavailableError as exc:
        return exc


@functools.cache
def _bundled_model() -> Path | LlamaUnavailableError:
    try:
        return ensure_bundled_model()
    except LlamaUnavailableError as exc:
        return exc


def pytest_collection_finish(session: pytest.Session) -> None:
    """Builds llama-server (and downloads the bundled model) before any e2e test runs.

    Both can outlast the per-test timeout the first time on a machine.
    """
    if not any(item.get_closest_marker("e2e") for item in session.items):
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None and not skip_requested() and not llama_paths_now().built:
        reporter.write_line("e2e: building llama-server with `make llama-server` (takes minutes)")
    # Failures surface in the fixtures, where pytest attributes them to tests.
    _llama_build()
    wanted = any("bundled_model_path" in getattr(i, "fixturenames", ()) for i in session.items)
    if wanted and not skip_requested():
        _bundled_model()


@pytest.fixture(scope="session")
def llama_paths() -> LlamaPaths:
    """The cached llama-server build; skips only when LLM_GATEWAY_SKIP_E2E=1."""
    result = _llama_build()
    if isinstance(result, LlamaUnavailableError):
        if skip_requested():
            pytest.skip(str(result))
        pytest.fail(str(result), pytrace=False)
    return result


@pytest.fixture(scope="session")
def tiny_model_path(llama_paths: LlamaPaths) -> Path:
    """The tiny random llama GGUF, cached beside the binary."""
    return cached_tiny_model(llama_paths.vocab, llama_paths.cache_dir)


@pytest.fixture(scope="session")
def bundled_model_path(llama_paths: LlamaPaths) -> Path:
    """The bundled SmolLM2-135M-Instruct GGUF (downloaded once, hash-checked, by make)."""
    if skip_requested() and not bundled_model_path_now().is_file():
        pytest.skip("the bundled model is not downloaded; run `make bundled-model`")
    result = _bundled_model()
    if isinstance(result, LlamaUnavailableError):
        if skip_requested():
            pytest.skip(str(result))
        pytest.fail(str(result), pytrace=False)
    return result


def _serve(
    paths: LlamaPaths,
    model: Path,
    args: tuple[str, ...],
    log_path: Path,
    *,
    alias: str = MODEL_ALIAS,
) -> Iterator[LlamaServer]:
    server = LlamaServer(
        binary=paths.server_bin, model_path=model, alias=alias, args=args, log_path=log_path
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def llama_chat_server(
    llama_paths: LlamaPaths, tiny_model_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LlamaServer]:
    """llama-server for chat completions: 4 slots, /slots enabled."""
    log_path = tmp_path_factory.mktemp("llama") / "chat.log"
    yield from _serve(llama_paths, tiny_model_path, CHAT_ARGS, log_path)


@pytest.fixture(scope="session")
def llama_embed_server(
    llama_paths: LlamaPaths, tiny_model_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LlamaServer]:
    """llama-server for embeddings: --embeddings --pooling mean."""
    log_path = tmp_path_factory.mktemp("llama") / "embed.log"
    yield from _serve(llama_paths, tiny_model_path, EMBED_ARGS, log_path)


@pytest.fixture(scope="session")
def bundled_server(
    llama_paths: LlamaPaths, bundled_model_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LlamaServer]:
    """llama-server on the bundled model, chat and embeddings from one process as `make run`."""
    log_path = tmp_path_factory.mktemp("llama") / "bundled.log"
    yield from _serve(llama_paths, bundled_model_path, BUNDLED_ARGS, log_path, alias=BUNDLED_ALIAS)
