"""README.md's "Configuration reference" documents exactly the keys GatewayConfig accepts.

The models are walked field by field (nested models, `dict[str, Model]` sections such as
`providers.NAME`, lists of models such as `routes.NAME.targets[]`); the README table's
first column is parsed (`a.b.c` / `d` / `e` is `a.b.c`, `a.b.d`, `a.b.e`; an upper-case
part such as `NAME` or `MODEL` stands for a name the user picks). A key added to a model
must get a row, and a row must name a key that exists.
"""

from __future__ import annotations

import re
import types
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel

from llm_gateway_server.config.model import GatewayConfig

README = Path(__file__).resolve().parents[2] / "README.md"
SECTION = "## Configuration reference"
# The placeholder an upper-case README part becomes.
ANY_NAME = "*"


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The BaseModel classes an annotation holds directly (`X`, `X | None`, unions)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if get_origin(annotation) in (Union, types.UnionType):
        return [m for arg in get_args(annotation) for m in _models_in(arg)]
    return []


def _without_none(annotation: Any) -> Any:
    """``X`` for ``X | None`` and ``Annotated[X, ...]`` (an optional list of models is still
    a list of models; providers are ``ProviderConfig`` validated per kind)."""
    if get_origin(annotation) is Annotated:
        return _without_none(get_args(annotation)[0])
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def config_keys(model: type[BaseModel], prefix: str = "") -> set[str]:
    """Every leaf key under ``model``: `server.tls.cert_file`, `providers.*.retry.max_attempts`."""
    keys: set[str] = set()
    for name, field in model.model_fields.items():
        path = f"{prefix}{name}"
        annotation = _without_none(field.annotation)
        origin, args = get_origin(annotation), get_args(annotation)
        nested = _models_in(annotation)
        if origin is dict and _models_in(_without_none(args[1])):
            for value in _models_in(_without_none(args[1])):
                keys |= config_keys(value, f"{path}.{ANY_NAME}.")
        elif origin in (tuple, list) and args and _models_in(args[0]):
            for item in _models_in(args[0]):
                keys |= config_keys(item, f"{path}[].")
        elif nested:
            for sub in nested:
                keys |= config_keys(sub, f"{path}.")
        else:
            keys.add(path)
    return keys


def _normalize(key: str) -> str:
    return ".".join(ANY_NAME if part.isupper() else part for part in key.split("."))


def documented_keys(readme: str) -> set[str]:
    """The keys the README's config reference table names."""
    start = readme.index(SECTION)
    end = readme.find("\n## ", start + len(SECTION))
    section = readme[start : end if end != -1 else None]
    keys: set[str] = set()
    for line in section.splitlines():
        if not line.startswith("| `"):
            continue
        first_cell = line.split("|")[1]
        names = re.findall(r"`([^`]+)`", first_cell)
        full = _normalize(names[0])
        keys.add(full)
        parent = full.rsplit(".", 1)[0]
        keys |= {f"{parent}.{sibling}" for sibling in names[1:]}
    return keys


def test_every_config_key_is_documented_and_nothing_else() -> None:
    actual = config_keys(GatewayConfig)
    documented = documented_keys(README.read_text())
    missing = sorted(actual - documented)
    extra = sorted(documented - actual)
    assert not missing and not extra, (
        f"README {SECTION!r} is out of step with GatewayConfig.\n"
        f"  keys with no row (add them): {missing}\n"
        f"  rows naming no key (remove or fix them): {extra}"
    )


def test_the_walk_sees_nested_sections() -> None:
    """The comparison is only as good as the walk: it must reach every kind of section."""
    keys = config_keys(GatewayConfig)
    for expected in (
        "server.tls.cert_file",
        "providers.*.retry.max_attempts",
        "providers.*.prices.*.input_per_mtok",
        "routes.*.targets[].provider",
        "auth.keys[].route_limits.*.rpm",
        "state.redis_url",
    ):
        assert expected in keys
    assert not any(key.endswith((".retry", ".tls", ".prices", ".keys")) for key in keys)


def test_the_servers_environment_variables_are_documented() -> None:
    source = " ".join(p.read_text() for p in (README.parents[0] / "server" / "src").rglob("*.py"))
    variables = set(re.findall(r"\bLLM_GATEWAY_[A-Z_]+\b", source))
    readme = README.read_text()
    section = readme[readme.index(SECTION) : readme.index("\n## ", readme.index(SECTION) + 1)]
    undocumented = sorted(v for v in variables if f"`{v}`" not in section)
    assert not undocumented, f"document in README {SECTION!r}: {undocumented}"
