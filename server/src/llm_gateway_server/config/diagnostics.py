"""Config errors a person can act on: where a YAML fault is, which key is wrong and why."""

from __future__ import annotations

import difflib
import types
import typing
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError


class UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that rejects a key given twice in one mapping (YAML keeps the last, silently).

    Two ``providers:`` sections, or a provider pasted twice, would otherwise drop half the
    config without a word.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, yaml.Mark] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"duplicate key {key!r} (first given at line {seen[key].line + 1})",
                    key_node.start_mark,
                )
            seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


def yaml_error_line(exc: yaml.YAMLError) -> str:
    """One line naming the line and column of the fault (1-based), then what is wrong there."""
    if not isinstance(exc, yaml.MarkedYAMLError) or exc.problem_mark is None:
        return f"not valid YAML: {exc}".replace("\n", " ")
    mark = exc.problem_mark
    line = f"line {mark.line + 1}, column {mark.column + 1}: not valid YAML: {exc.problem}"
    # The context ("while parsing a block mapping") points at where the enclosing construct
    # began, which is not the fault but helps find it (a mis-indented key, an unclosed quote).
    if exc.context and exc.context_mark is not None and exc.context_mark.line != mark.line:
        where = f"line {exc.context_mark.line + 1}, column {exc.context_mark.column + 1}"
        line += f" ({exc.context}, from {where})"
    return line


def _models_in(annotation: Any) -> list[Any]:
    """The types one step inside ``annotation``: union members, list items or dict values."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Union or origin is types.UnionType:
        return [a for a in args if a is not type(None)]
    if origin is typing.Annotated:
        return [args[0]]
    return [annotation]


def _step(annotation: Any, part: str | int) -> Any:
    for candidate in _models_in(annotation):
        origin = typing.get_origin(candidate)
        args = typing.get_args(candidate)
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            field = candidate.model_fields.get(str(part))
            if field is not None:
                return field.annotation
        elif origin is dict and args:
            return args[1]
        elif origin in (list, tuple) and args and isinstance(part, int):
            return args[0]
    return None


def known_keys(root: type[BaseModel], loc: tuple[str | int, ...]) -> list[str]:
    """The keys the model at ``loc`` (a pydantic error location) accepts; [] when unknown."""
    annotation: Any = root
    for part in loc:
        annotation = _step(annotation, part)
        if annotation is None:
            return []
    for candidate in _models_in(annotation):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return list(candidate.model_fields)
    return []


def _key_of(loc: tuple[str | int, ...]) -> str:
    key = ""
    for part in loc:
        key += f"[{part}]" if isinstance(part, int) else (f".{part}" if key else str(part))
    return key


def _is_prefix(short: tuple[Any, ...], long: tuple[Any, ...]) -> bool:
    return len(short) < len(long) and long[: len(short)] == short


def validation_error_lines(exc: ValidationError, root: type[BaseModel]) -> list[str]:
    """One line per problem, each naming its key; no follow-on errors.

    An error on a container whose own item already failed (a list left empty once its one bad
    item is dropped) repeats the same fault less precisely, so it is left out.
    """
    errors = exc.errors()
    locs = [tuple(err["loc"]) for err in errors]
    lines: list[str] = []
    for err, loc in zip(errors, locs, strict=True):
        if any(_is_prefix(loc, other) for other in locs):
            continue
        key = _key_of(loc)
        if err["type"] == "extra_forbidden" and loc:
            message = "unknown key"
            close = difflib.get_close_matches(str(loc[-1]), known_keys(root, loc[:-1]), n=1)
            message += f" (did you mean {close[0]}?)" if close else ""
        else:
            message = err["msg"].removeprefix("Value error, ")
        for line in message.splitlines():
            # Cross-field checks already name their key; field errors get theirs prefixed.
            lines.append(line if not key else f"{key}: {line}")
    return lines
