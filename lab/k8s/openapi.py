"""The OpenAPI v3 documents kubectl reads, and strict field validation.

kubectl (``create``, ``apply``, ``replace``) decides between client-side and server-side
validation by looking in ``/openapi/v3/<group-version>`` for a PATCH operation of the
kind that accepts the ``fieldValidation`` query parameter.  The documents here carry
exactly that: the paths of every served resource with their group-version-kind and
parameters, without schemas, so kubectl asks the server to validate.  The server then
checks unknown fields against the Kubernetes JSON schemas of `kubernetes_validate`.

Caveat: only unknown fields are reported; other schema violations are left to the
admission checks in `lab.k8s.admission`.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import kubernetes_validate

from lab.k8s import resources
from lab.k8s.errors import ApiError
from lab.k8s.resources import ResourceType

Obj = dict[str, Any]

_QUERY_PARAMS = ("dryRun", "fieldManager", "fieldValidation", "force", "pretty")
_UNEXPECTED = re.compile(r"'([^']+)' (?:was|were) unexpected|\('([^)]*)' (?:was|were) unexpected")


def _gv_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def _operation(rt: ResourceType, action: str) -> Obj:
    return {
        "operationId": f"{action}{rt.kind}",
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {
            "group": rt.group,
            "version": rt.version,
            "kind": rt.kind,
        },
        "parameters": [
            {"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": True}}
            for name in _QUERY_PARAMS
        ],
        "responses": {"200": {"description": "OK"}},
    }


def group_version_document(group: str, version: str) -> Obj:
    paths: Obj = {}
    for rt in resources.RESOURCE_TYPES:
        if (rt.group, rt.version) != (group, version):
            continue
        prefix = "/" + _gv_path(group, version)
        scope = f"{prefix}/namespaces/{{namespace}}" if rt.namespaced else prefix
        paths[f"{scope}/{rt.plural}"] = {
            "post": _operation(rt, "post"),
            "get": _operation(rt, "list"),
        }
        paths[f"{scope}/{rt.plural}/{{name}}"] = {
            "get": _operation(rt, "get"),
            "put": _operation(rt, "put"),
            "patch": _operation(rt, "patch"),
            "delete": _operation(rt, "delete"),
        }
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "unversioned"},
        "paths": paths,
        "components": {"schemas": {}},
    }


def index_document() -> Obj:
    out: Obj = {}
    for group, version in resources.group_versions():
        doc = json.dumps(group_version_document(group, version), sort_keys=True)
        digest = hashlib.sha512(doc.encode()).hexdigest()[:32].upper()
        path = _gv_path(group, version)
        out[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={digest}"}
    return {"paths": out}


def unknown_fields(obj: Obj, kubernetes_version: str) -> list[str]:
    """Dotted paths of fields the Kubernetes schema of this kind does not have."""
    try:
        kubernetes_validate.validate(obj, kubernetes_version, strict=True)
    except kubernetes_validate.utils.VersionNotSupportedError:
        # A server newer than the schemas shipped: check against the newest there is.
        return unknown_fields(obj, str(kubernetes_validate.latest_version()))
    except kubernetes_validate.SchemaNotFoundError:
        return []  # not a built-in kind (a custom resource): nothing to check against
    except kubernetes_validate.ValidationError as exc:
        if exc.validator != "additionalProperties":
            return []
        where = _dotted(list(exc.path))
        names = []
        for match in _UNEXPECTED.finditer(str(exc.message)):
            for part in (match.group(1) or match.group(2) or "").split(","):
                names.append(part.strip().strip("'"))
        return [f"{where}.{n}" if where else n for n in names if n]
    return []


def _dotted(path: list[Any]) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def check_fields(obj: Obj, mode: str | None, kubernetes_version: str) -> list[str]:
    """Apply ``fieldValidation``: Strict fails, Warn returns warnings, Ignore does nothing."""
    if mode in (None, "", "Ignore"):
        return []
    unknown = unknown_fields(obj, kubernetes_version)
    if not unknown:
        return []
    if mode == "Strict":
        text = ", ".join(f'unknown field "{u}"' for u in unknown)
        raise ApiError(400, "BadRequest", f"strict decoding error: {text}")
    return [f'unknown field "{u}"' for u in unknown]
