"""The bundled model (SmolLM2-135M-Instruct, mk/model.mk) for the real-model e2e tests."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from llm_gateway_server.launcher import LLAMA_ARGS

from .llama import REPO_ROOT, LlamaUnavailableError, _make_env

#: The model name the shipped config routes to (and the launcher's --alias).
BUNDLED_ALIAS = "smollm2-135m-instruct"
#: As the launcher serves it (chat and embeddings from one process), but one compute thread
#: and /slots on: the test machine has 2 cores and runs the gateway too.
BUNDLED_ARGS = (*LLAMA_ARGS, "--threads", "1", "--slots", "--no-warmup")
#: SmolLM2-135M's hidden size: the length of its mean-pooled embeddings.
BUNDLED_EMBEDDING_DIM = 576


def _make(target: str) -> subprocess.CompletedProcess[str]:
    # The top Makefile (not mk/model.mk alone): it provides the bootstrapped uv the download uses.
    return subprocess.run(
        ["make", "--no-print-directory", "-s", "-C", str(REPO_ROOT), target],
        capture_output=True,
        text=True,
        env=_make_env(),
        check=False,
    )


def bundled_model_path() -> Path:
    """Where mk/model.mk caches the GGUF (exported by `make test`, else asked of make)."""
    value = os.environ.get("BUNDLED_MODEL_GGUF", "")
    if not value:
        result = _make("bundled-model-paths")
        name, _, value = result.stdout.strip().partition("=")
        if result.returncode != 0 or name != "BUNDLED_MODEL_GGUF":
            raise LlamaUnavailableError(f"make bundled-model-paths failed:\n{result.stderr}")
    return Path(value)


def ensure_bundled_model() -> Path:
    """The cached GGUF, downloading it (93 MB, hash-checked) with `make bundled-model` if absent."""
    path = bundled_model_path()
    if path.is_file():
        return path
    result = _make("bundled-model")
    if result.returncode != 0 or not path.is_file():
        output = (result.stdout + result.stderr)[-4000:]
        raise LlamaUnavailableError(f"make bundled-model failed ({result.returncode}):\n{output}")
    return path
