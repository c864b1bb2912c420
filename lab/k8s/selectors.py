"""Label and field selectors as the API server parses them.

Label selectors accept equality (``k=v``, ``k==v``, ``k!=v``) and set-based terms
(``k in (a,b)``, ``k notin (a)``, ``k``, ``!k``), comma-separated and ANDed.  Field
selectors accept ``path=value``, ``path==value`` and ``path!=value`` over dotted paths of
the object (``metadata.name``, ``spec.nodeName``, ``status.phase``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from lab.k8s.errors import ApiError, bad_request

Matcher = Callable[[Mapping[str, Any]], bool]

_SET_TERM = re.compile(r"^\s*(!?)\s*([A-Za-z0-9_./-]+)\s*(?:(in|notin)\s*\(([^)]*)\))?\s*$")
_EQ_TERM = re.compile(r"^\s*([A-Za-z0-9_./-]+)\s*(==|=|!=)\s*([A-Za-z0-9_.-]*)\s*$")


def _split_terms(text: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    terms: list[str] = []
    depth = 0
    current: list[str] = []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            terms.append("".join(current))
            current = []
        else:
            current.append(ch)
    terms.append("".join(current))
    return [t for t in (t.strip() for t in terms) if t]


def _label_term(term: str) -> Callable[[Mapping[str, str]], bool]:
    eq = _EQ_TERM.match(term)
    if eq:
        key, op, value = eq.groups()
        if op == "!=":
            return lambda labels: labels.get(key) != value
        return lambda labels: labels.get(key) == value
    st = _SET_TERM.match(term)
    if st:
        negate, key, op, values_text = st.groups()
        if op is None:
            if negate:
                return lambda labels: key not in labels
            return lambda labels: key in labels
        values = {v.strip() for v in values_text.split(",") if v.strip()}
        if op == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    raise bad_request(f"unable to parse requirement: invalid label selector term {term!r}")


def label_matcher(text: str | None) -> Callable[[Mapping[str, str]], bool]:
    """A predicate over a label map; an empty selector matches everything."""
    if not text:
        return lambda labels: True
    checks = [_label_term(t) for t in _split_terms(text)]
    return lambda labels: all(check(labels) for check in checks)


def selector_text(selector: Mapping[str, Any] | None) -> str:
    """A ``LabelSelector`` (matchLabels and matchExpressions) as selector text."""
    if not selector:
        return ""
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key", ""), expr.get("operator", ""), expr.get("values", [])
        if op == "In":
            parts.append(f"{key} in ({','.join(values)})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({','.join(values)})")
        elif op == "Exists":
            parts.append(key)
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(parts)


def selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """Whether a ``LabelSelector`` selects these labels.  An empty selector selects all."""
    return label_matcher(selector_text(selector))(labels)


def lookup(obj: Mapping[str, Any], path: str) -> Any:
    node: Any = obj
    for part in path.split("."):
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node


def _field_value(obj: Mapping[str, Any], path: str) -> str:
    value = lookup(obj, path)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _field_check(path: str, value: str, *, negate: bool) -> Matcher:
    def check(obj: Mapping[str, Any]) -> bool:
        return (_field_value(obj, path) == value) != negate

    return check


def field_matcher(text: str | None) -> Matcher:
    if not text:
        return lambda obj: True
    checks: list[Matcher] = []
    for term in _split_terms(text):
        match = re.match(r"^([A-Za-z0-9_.]+)\s*(==|=|!=)\s*(.*)$", term)
        if not match:
            raise ApiError(
                400, "BadRequest", f"invalid field selector {text!r}: cannot parse {term!r}"
            )
        path, op, value = match.groups()
        checks.append(_field_check(path, value, negate=op == "!="))
    return lambda obj: all(check(obj) for check in checks)
