"""YAML loading that remembers where each value came from.

Validation errors must name the file, the line and the field path; `load_with_lines`
returns the plain data and a map from field paths (tuples of keys and indices) to the
1-based line each value starts on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from bench.errors import ProfileError

Location = tuple[str | int, ...]


def _construct(node: yaml.Node, path: Location, lines: dict[Location, int]) -> Any:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = yaml.safe_load(yaml.serialize(key_node))
            if key in out:
                raise _DuplicateKey(key_node.start_mark.line + 1, _dotted((*path, key)))
            out[key] = _construct(value_node, (*path, key), lines)
            # errors about a key point at the key's line, not its value's
            lines[(*path, key)] = key_node.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_construct(item, (*path, i), lines) for i, item in enumerate(node.value)]
    return yaml.safe_load(yaml.serialize(node))


class _DuplicateKey(Exception):
    def __init__(self, line: int, field: str) -> None:
        super().__init__(field)
        self.line = line
        self.field = field


def _dotted(path: Location) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top)"


def dotted(path: Location) -> str:
    return _dotted(path)


def load_with_lines(path: Path) -> tuple[Any, dict[Location, int]]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ProfileError([f"{path}:0: (file): cannot read: {exc.strerror}"]) from exc
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 0
        problem = getattr(exc, "problem", None) or str(exc)
        raise ProfileError([f"{path}:{line}: (yaml): {problem}"]) from exc
    lines: dict[Location, int] = {}
    if node is None:
        return None, lines
    try:
        data = _construct(node, (), lines)
    except _DuplicateKey as exc:
        raise ProfileError([f"{path}:{exc.line}: {exc.field}: duplicate key"]) from exc
    return data, lines


def line_for(lines: dict[Location, int], path: Location) -> int:
    """The line of the deepest part of `path` that exists in the document."""
    probe = tuple(path)
    while probe:
        if probe in lines:
            return lines[probe]
        probe = probe[:-1]
    return lines.get((), 1)
