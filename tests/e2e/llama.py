"""Locating, building and running a real llama.cpp ``llama-server`` for end-to-end tests."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
LLAMA_MK = "mk/llama.mk"
# Set to 1 to skip (rather than build) when the binary is not cached; CI must not set it.
SKIP_ENV = "LLM_GATEWAY_SKIP_E2E"

MODEL_ALIAS = "tiny-llama"

CHAT_SLOTS = 4
# 8192 tokens per slot. The model makes 1-2 thousand tokens/s, so only long generations can be
# observed (or cancelled, or cut by a deadline) mid-flight; its KV cache costs 512 bytes a token.
CHAT_CTX_PER_SLOT = 8192
# One compute thread: the test machine has 2 cores and runs the gateway too. --slots keeps
# /slots on for the slot-release checks.
CHAT_ARGS = (
    *("-np", str(CHAT_SLOTS), "-c", str(CHAT_SLOTS * CHAT_CTX_PER_SLOT)),
    *("--threads", "1", "--slots", "--no-warmup"),
)
EMBED_ARGS = (
    *("--embeddings", "--pooling", "mean"),
    *("-np", "2", "-c", "1024", "--threads", "1", "--no-warmup"),
)

_PATH_VARS = ("LLAMA_SERVER_BIN", "LLAMA_VOCAB_GGUF", "LLAMA_CACHE_DIR")
_LISTENING = re.compile(r"listening on http://127\.0\.0\.1:(\d+)")


class LlamaUnavailableError(RuntimeError):
    """The binary is missing and building it was not allowed or failed."""


@dataclass(frozen=True)
class LlamaPaths:
    """Where mk/llama.mk caches the server binary, the vocabulary and generated models."""

    server_bin: Path
    vocab: Path
    cache_dir: Path

    @property
    def built(self) -> bool:
        """True when the cached binary and vocabulary both exist."""
        return self.server_bin.is_file() and self.vocab.is_file()


def _make_env() -> dict[str, str]:
    # A parent `make` passes its jobserver through MAKEFLAGS; a nested make must not inherit it.
    drop = {"MAKEFLAGS", "MFLAGS", "MAKELEVEL"}
    return {k: v for k, v in os.environ.items() if k not in drop}


def _run_make(target: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", "-s", "-C", str(REPO_ROOT), "-f", LLAMA_MK, target],
        capture_output=True,
        text=True,
        env=_make_env(),
        check=False,
    )


def llama_paths() -> LlamaPaths:
    """Paths exported by the top Makefile, else asked of mk/llama.mk (the single source)."""
    values = {name: os.environ.get(name, "") for name in _PATH_VARS}
    if not all(values.values()):
        result = _run_make("llama-paths")
        if result.returncode != 0:
            raise LlamaUnavailableError(f"make llama-paths failed:\n{result.stderr}")
        for line in result.stdout.splitlines():
            name, _, value = line.partition("=")
            if name in values:
                values[name] = value.strip()
    return LlamaPaths(
        server_bin=Path(values["LLAMA_SERVER_BIN"]),
        vocab=Path(values["LLAMA_VOCAB_GGUF"]),
        cache_dir=Path(values["LLAMA_CACHE_DIR"]),
    )


def skip_requested() -> bool:
    """True when the developer asked to skip e2e tests instead of building llama-server."""
    return os.environ.get(SKIP_ENV, "") == "1"


def ensure_llama_built() -> LlamaPaths:
    """Returns the cached paths, running ``make llama-server`` (minutes) when absent.

    Raises LlamaUnavailableError when the build fails, or when it is missing and skipping was
    requested (the caller turns that into a skip).
    """
    paths = llama_paths()
    if paths.built:
        return paths
    if skip_requested():
        raise LlamaUnavailableError(
            f"llama-server is not built ({paths.server_bin}) and {SKIP_ENV}=1; "
            "run `make llama-server` to build it"
        )
    result = _run_make("llama-server")
    if result.returncode != 0 or not paths.built:
        output = (result.stdout + result.stderr)[-4000:]
        raise LlamaUnavailableError(f"make llama-server failed ({result.returncode}):\n{output}")
    return paths


class LlamaServer:
    """One llama-server process on a free loopback port (it binds port 0 and logs the port)."""

    def __init__(
        self,
        *,
        binary: Path,
        model_path: Path,
        alias: str,
        args: Sequence[str],
        log_path: Path,
    ) -> None:
        self.model = alias
        self.log_path = log_path
        self._argv = [
            str(binary),
            *("--model", str(model_path)),
            *("--alias", alias),
            *("--host", "127.0.0.1", "--port", "0"),
            "--no-webui",
            *args,
        ]
        self._proc: subprocess.Popen[bytes] | None = None
        self._port: int | None = None

    @property
    def port(self) -> int:
        """The TCP port the server bound."""
        if self._port is None:
            raise RuntimeError("llama-server is not started")
        return self._port

    @property
    def root_url(self) -> str:
        """Server root, for llama.cpp's own endpoints (/health, /slots, /tokenize...)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """OpenAI-compatible base URL, as a provider config would hold it."""
        return f"{self.root_url}/v1"

    def start(self, *, timeout: float = 60.0) -> None:
        """Starts the process and blocks until it logged its port and /health answers 200."""
        with self.log_path.open("wb") as log:
            self._proc = subprocess.Popen(
                self._argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(
                    f"llama-server exited with {self._proc.returncode}:\n{self.log_tail()}"
                )
            if self._port is None:
                match = _LISTENING.search(self.log_path.read_text(errors="replace"))
                self._port = int(match.group(1)) if match else None
            if self._port is not None and self._health_ok():
                return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"llama-server not healthy after {timeout} s:\n{self.log_tail()}")

    def _health_ok(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.root_url}/health", timeout=2) as resp:
                return bool(resp.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def get_json(self, path: str) -> Any:
        """GET a llama.cpp endpoint (blocking; the server answers these in microseconds)."""
        with urllib.request.urlopen(f"{self.root_url}{path}", timeout=10) as resp:
            return json.loads(resp.read())

    def post_json(self, path: str, body: dict[str, Any]) -> Any:
        """POST JSON to a llama.cpp endpoint and decode the JSON answer."""
        request = urllib.request.Request(
            f"{self.root_url}{path}",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as resp:
            return json.loads(resp.read())

    def slots(self) -> list[dict[str, Any]]:
        """The /slots state: one dict per slot, ``is_processing`` true while busy."""
        result: list[dict[str, Any]] = self.get_json("/slots")
        return result

    def busy_slots(self) -> int:
        """How many slots are processing a task now."""
        return sum(1 for slot in self.slots() if slot.get("is_processing"))

    async def wait_idle(self, *, timeout: float = 10.0) -> bool:
        """Polls /slots until no slot is busy; returns False if still busy after timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if await asyncio.to_thread(self.busy_slots) == 0:
                return True
            await asyncio.sleep(0.05)
        return False

    def log_tail(self, n_bytes: int = 4000) -> str:
        """The end of the server log, for failure messages."""
        try:
            return self.log_path.read_text(errors="replace")[-n_bytes:]
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it lingers."""
        if self._proc is None or self._proc.poll() is not None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(timeout=10)
