"""Every Python example of the client README (and of the main README's client section) runs.

They run against the shipped fake gateway, which answers every call.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from llmgateway.testing import FakeGateway

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "clients" / "python" / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), re.DOTALL)
# The main README's client section too.
_MAIN = (ROOT / "README.md").read_text()
_START = _MAIN.index("## Call it from another service")
_SECTION = _MAIN[_START : _MAIN.index("\n## ", _START + 1)]
BLOCKS += re.findall(r"```python\n(.*?)```", _SECTION, re.DOTALL)


def test_the_readme_has_examples() -> None:
    assert len(BLOCKS) >= 5


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_example_runs(code: str, fake: FakeGateway, threaded_target: str) -> None:
    # The examples name the gateway's usual address; the fake serves on a free port.
    runnable = code.replace("localhost:50051", threaded_target)
    namespace: dict[str, object] = {"__name__": "readme_example"}
    exec(compile(runnable, str(README), "exec"), namespace)
