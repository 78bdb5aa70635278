"""Every Python example in clients/python/README.md runs, against the shipped fake gateway."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from llmgateway.testing import FakeGateway

README = Path(__file__).resolve().parents[2] / "clients" / "python" / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), re.DOTALL)


def test_the_readme_has_examples() -> None:
    assert len(BLOCKS) >= 5


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_example_runs(code: str, fake: FakeGateway, threaded_target: str) -> None:
    # The examples name the gateway's usual address; the fake serves on a free port.
    runnable = code.replace("localhost:50051", threaded_target)
    namespace: dict[str, object] = {"__name__": "readme_example"}
    exec(compile(runnable, str(README), "exec"), namespace)
