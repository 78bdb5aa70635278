"""The one-time llama-server build reports progress (mk/llama.mk) instead of minutes of silence."""

from __future__ import annotations

import re
import subprocess

from .llama import LLAMA_MK, REPO_ROOT, _make_env

# A stand-in for `cmake --build` output, fed through the same filter the build uses.
_DEMO = (
    "progress-demo: ; @printf '%s\\n' '[  1%] Building C object ggml.c.o' 'warning: noise'"
    " '[ 52%] Building CXX object llama.cpp.o' '[100%] Built target llama-server'"
    " | $(LLAMA_PROGRESS_SH)"
)


def test_the_build_prints_its_percentage_and_elapsed_time() -> None:
    done = subprocess.run(
        ["make", "-s", "-C", str(REPO_ROOT), "-f", LLAMA_MK, "--eval", _DEMO, "progress-demo"],
        capture_output=True,
        text=True,
        env=_make_env(),
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert all(re.fullmatch(r"llama-server: build +\d+%  \(\d+m\d\ds elapsed\)", x) for x in lines)
    assert lines[0].startswith("llama-server: build   1%")
    assert lines[-1].startswith("llama-server: build 100%")
    assert "noise" not in done.stdout


def test_the_build_says_up_front_that_it_takes_minutes() -> None:
    done = subprocess.run(
        # -n: the recipe a machine without the cached build would run, printed, not run.
        ["make", "-n", "-C", str(REPO_ROOT), "-f", LLAMA_MK, "LLAMA_CACHE_ROOT=/nonexistent/x",
         "llama-server"],
        capture_output=True,
        text=True,
        env=_make_env(),
        timeout=60,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "a few minutes" in done.stdout
