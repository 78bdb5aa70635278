"""clients/python installs into a fresh virtual environment as a typed package.

The wheel is built from clients/python and installed with the dependency
versions of uv.lock (hashes checked) into an empty venv, from uv's cache:
no network is needed once `make install` has run.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

import llmgateway.v1
from llmgateway.v1 import chat_pb2, gateway_service_pb2_grpc

ROOT = Path(__file__).resolve().parents[2]
CLIENT = ROOT / "clients" / "python"
GENERATED = Path(llmgateway.v1.__file__).parent

TYPED_USE = """\
from llmgateway.client import AsyncGatewayClient, GatewayClient, GatewayError
from llmgateway.testing import FakeGateway, serve_in_thread
from llmgateway.v1 import chat_pb2, gateway_service_pb2_grpc


def answer(client: GatewayClient) -> str:
    response = client.chat("hi", tools=[{"type": "function", "function": {"name": "f"}}])
    reveal_type(response)
    reveal_type(response.finish_reason)
    client.embed("one text")
    return response.content


def misspelled(client: GatewayClient) -> str:
    return client.complete("hi", model="chat", temprature=0.2)


wrong: int = chat_pb2.ChatRequest().model
"""


def _uv() -> str:
    """The uv that `make install` uses, or one on PATH."""
    candidates = [os.environ.get("UV"), shutil.which("uv")]
    candidates += [str(path) for path in Path.home().glob(".cache/llm-gateway/uv-*/bin/uv")]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return candidate
    pytest.skip("uv not found (run `make install`)")


def _run(*args: str | Path, cwd: Path) -> str:
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    done = subprocess.run(
        [str(arg) for arg in args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, f"{args[:3]} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _uv_offline_first(uv: str, *args: str | Path, cwd: Path) -> None:
    """Run a uv command from its cache; go to the registry only if that fails."""
    try:
        _run(uv, *args[:1], "--offline", *args[1:], cwd=cwd)
    except AssertionError:
        _run(uv, *args, cwd=cwd)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the built wheel and its locked dependencies; its python."""
    uv = _uv()
    work = tmp_path_factory.mktemp("install")
    requirements = work / "requirements.txt"
    _run(
        uv, "export", "--frozen", "--package", "llm-gateway-client", "--extra", "typing",
        "--no-emit-workspace", "--no-dev", "--format", "requirements-txt",
        "--output-file", requirements, cwd=ROOT,
    )  # fmt: skip
    _uv_offline_first(uv, "build", "--wheel", "--out-dir", work / "dist", CLIENT, cwd=work)
    (wheel,) = (work / "dist").glob("llm_gateway_client-*.whl")
    _run(uv, "venv", "--quiet", "--python", sys.executable, work / "venv", cwd=work)
    python = work / "venv" / "bin" / "python"
    _uv_offline_first(
        uv, "pip", "install", "--python", python, "--no-deps", "--require-hashes",
        "-r", requirements, cwd=work,
    )  # fmt: skip
    _uv_offline_first(uv, "pip", "install", "--python", python, "--no-deps", wheel, cwd=work)
    # The wheel's declared dependencies are met by the locked versions.
    _run(uv, "pip", "check", "--python", python, cwd=work)
    return python


@pytest.mark.slow
def test_installed_package_imports(installed: Path, tmp_path: Path) -> None:
    out = _run(
        installed,
        "-c",
        "import llmgateway, llmgateway.v1.chat_pb2, llmgateway.v1.gateway_service_pb2_grpc\n"
        "from llmgateway.client import GatewayClient, AsyncGatewayClient, GatewayError\n"
        "print(llmgateway.__file__)",
        cwd=tmp_path,
    )
    package = Path(out.strip()).parent
    assert package.is_relative_to(installed.parents[1]), "imported the source tree, not the wheel"


@pytest.mark.slow
def test_installed_package_ships_stubs_and_py_typed(installed: Path, tmp_path: Path) -> None:
    out = _run(installed, "-c", "import llmgateway; print(llmgateway.__file__)", cwd=tmp_path)
    package = Path(out.strip()).parent
    assert (package / "py.typed").is_file()
    shipped = sorted(path.name for path in (package / "v1").glob("*.pyi"))
    expected = sorted(path.name for path in GENERATED.glob("*.pyi"))
    assert expected and shipped == expected
    assert (package / "client" / "sync_client.py").is_file()
    assert (package / "testing" / "fake_gateway.py").is_file()


@pytest.mark.slow
def test_mypy_uses_the_installed_stubs(installed: Path, tmp_path: Path) -> None:
    (tmp_path / "use.py").write_text(TYPED_USE)
    (tmp_path / "mypy.ini").write_text("[mypy]\nstrict = True\n")
    done = subprocess.run(
        [
            sys.executable, "-m", "mypy", "--config-file", "mypy.ini",
            "--python-executable", str(installed), "--cache-dir", str(tmp_path / ".mypy"),
            "use.py",
        ],
        cwd=tmp_path, capture_output=True, text=True, check=False,
    )  # fmt: skip
    out = done.stdout
    assert 'Revealed type is "llmgateway.client.answers.ChatAnswer"' in out, out
    assert 'Revealed type is "llmgateway.client.answers.FinishReason"' in out, out
    # Exactly the planted errors: the misspelled option, and `model` typed as str.
    errors = [line for line in out.splitlines() if ": error:" in line]
    assert len(errors) == 2, out
    assert 'Unexpected keyword argument "temprature"' in errors[0]
    assert 'expression has type "str", variable has type "int"' in errors[1]


def test_lower_bounds_match_the_generated_code() -> None:
    """Regenerating with newer tools must raise the package's lower bounds too."""
    project = tomllib.loads((CLIENT / "pyproject.toml").read_text())["project"]
    bounds = {
        requirement.name: requirement.specifier
        for requirement in map(Requirement, project["dependencies"])
    }
    grpc_generated = Version(gateway_service_pb2_grpc.GRPC_GENERATED_VERSION)
    source = Path(chat_pb2.__file__).read_text()
    match = re.search(r"Domain\.PUBLIC,\s*(\d+),\s*(\d+),\s*(\d+),", source)
    assert match, "no protobuf gencode version in chat_pb2.py"
    protobuf_generated = Version(".".join(match.groups()))
    for name, generated in (("grpcio", grpc_generated), ("protobuf", protobuf_generated)):
        minimum = min(Version(spec.version) for spec in bounds[name] if spec.operator == ">=")
        assert minimum >= generated, f"{name}>={minimum} is below the generated {generated}"
