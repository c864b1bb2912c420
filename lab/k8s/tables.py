"""Server-side printing: lists as ``meta.k8s.io/v1 Table`` with kubectl's columns.

kubectl asks for a Table (``Accept: application/json;as=Table;v=v1;g=meta.k8s.io``) and
prints the rows as they come; the columns here are those kube-apiserver's printers give
for the same kinds.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from lab.k8s.resources import ResourceType

Obj = dict[str, Any]
Column = tuple[str, str, int]  # name, type, priority


def human_duration(seconds: float) -> str:
    """kubectl's ``duration.HumanDuration``."""
    s = int(max(0, seconds))
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return f"{minutes}m{s % 60}s" if s % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    days = hours // 24
    if days < 8:
        return f"{days}d{hours % 24}h" if hours % 24 else f"{days}d"
    return f"{days}d"


def _age(obj: Obj, field: str = "creationTimestamp") -> str:
    text = obj.get("metadata", {}).get(field) if field == "creationTimestamp" else field
    if not text:
        return "<unknown>"
    when = datetime.strptime(str(text)[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    return human_duration(time.time() - when.timestamp())


def _pod_status(pod: Obj) -> str:
    meta, status = pod["metadata"], pod.get("status") or {}
    if meta.get("deletionTimestamp"):
        return "Terminating"
    reason = status.get("reason") or status.get("phase", "Pending")
    for cs in status.get("containerStatuses") or []:
        state = cs.get("state") or {}
        if "waiting" in state and state["waiting"].get("reason"):
            return str(state["waiting"]["reason"])
        if "terminated" in state:
            return str(state["terminated"].get("reason", "Terminated"))
    return str(reason)


def _pod_row(pod: Obj) -> list[Any]:
    status = pod.get("status") or {}
    statuses = status.get("containerStatuses") or []
    total = len(pod["spec"].get("containers") or [])
    ready = sum(1 for cs in statuses if cs.get("ready"))
    restarts = sum(int(cs.get("restartCount", 0)) for cs in statuses)
    return [
        pod["metadata"]["name"],
        f"{ready}/{total}",
        _pod_status(pod),
        restarts,
        _age(pod),
        status.get("podIP") or "<none>",
        pod["spec"].get("nodeName") or "<none>",
        "<none>",
        "<none>",
    ]


def _images(obj: Obj) -> tuple[str, str]:
    containers = obj["spec"]["template"]["spec"].get("containers") or []
    return (",".join(c["name"] for c in containers), ",".join(c["image"] for c in containers))


def _selector(obj: Obj) -> str:
    sel = obj["spec"].get("selector") or {}
    return ",".join(f"{k}={v}" for k, v in sorted((sel.get("matchLabels") or {}).items()))


def _deployment_row(d: Obj) -> list[Any]:
    s = d.get("status") or {}
    names, images = _images(d)
    return [
        d["metadata"]["name"],
        f"{s.get('readyReplicas', 0)}/{d['spec'].get('replicas', 1)}",
        s.get("updatedReplicas", 0),
        s.get("availableReplicas", 0),
        _age(d),
        names,
        images,
        _selector(d),
    ]


def _replicaset_row(rs: Obj) -> list[Any]:
    s = rs.get("status") or {}
    names, images = _images(rs)
    return [
        rs["metadata"]["name"],
        rs["spec"].get("replicas", 1),
        s.get("replicas", 0),
        s.get("readyReplicas", 0),
        _age(rs),
        names,
        images,
        _selector(rs),
    ]


def _statefulset_row(st: Obj) -> list[Any]:
    s = st.get("status") or {}
    names, images = _images(st)
    return [
        st["metadata"]["name"],
        f"{s.get('readyReplicas', 0)}/{st['spec'].get('replicas', 1)}",
        _age(st),
        names,
        images,
    ]


def _node_row(node: Obj) -> list[Any]:
    labels = node["metadata"].get("labels") or {}
    roles = sorted(k.split("/", 1)[1] for k in labels if k.startswith("node-role.kubernetes.io/"))
    ready = next(
        (c for c in node.get("status", {}).get("conditions") or [] if c["type"] == "Ready"), None
    )
    status = "Ready" if ready and ready["status"] == "True" else "NotReady"
    if node.get("spec", {}).get("unschedulable"):
        status += ",SchedulingDisabled"
    info = node.get("status", {}).get("nodeInfo") or {}
    addresses = {a["type"]: a["address"] for a in node.get("status", {}).get("addresses") or []}
    return [
        node["metadata"]["name"],
        status,
        ",".join(roles) or "<none>",
        _age(node),
        info.get("kubeletVersion", ""),
        addresses.get("InternalIP", "<none>"),
        addresses.get("ExternalIP", "<none>"),
        info.get("osImage", ""),
        info.get("kernelVersion", ""),
        info.get("containerRuntimeVersion", ""),
    ]


def _service_row(svc: Obj) -> list[Any]:
    spec = svc.get("spec") or {}
    ports = ",".join(
        f"{p.get('port')}/{p.get('protocol', 'TCP')}" for p in spec.get("ports") or []
    )
    selector = ",".join(f"{k}={v}" for k, v in sorted((spec.get("selector") or {}).items()))
    return [
        svc["metadata"]["name"],
        spec.get("type", "ClusterIP"),
        spec.get("clusterIP", "<none>"),
        "<none>",
        ports or "<none>",
        _age(svc),
        selector or "<none>",
    ]


def _event_row(ev: Obj) -> list[Any]:
    involved = ev.get("involvedObject") or {}
    return [
        _age(ev, ev.get("lastTimestamp") or ev["metadata"].get("creationTimestamp")),
        ev.get("type", ""),
        ev.get("reason", ""),
        f"{str(involved.get('kind', '')).lower()}/{involved.get('name', '')}",
        ev.get("message", ""),
    ]


_COLUMNS: dict[str, tuple[list[Column], Any]] = {
    "Pod": (
        [
            ("Name", "string", 0),
            ("Ready", "string", 0),
            ("Status", "string", 0),
            ("Restarts", "string", 0),
            ("Age", "string", 0),
            ("IP", "string", 1),
            ("Node", "string", 1),
            ("Nominated Node", "string", 1),
            ("Readiness Gates", "string", 1),
        ],
        _pod_row,
    ),
    "Deployment": (
        [
            ("Name", "string", 0),
            ("Ready", "string", 0),
            ("Up-to-date", "integer", 0),
            ("Available", "integer", 0),
            ("Age", "string", 0),
            ("Containers", "string", 1),
            ("Images", "string", 1),
            ("Selector", "string", 1),
        ],
        _deployment_row,
    ),
    "ReplicaSet": (
        [
            ("Name", "string", 0),
            ("Desired", "integer", 0),
            ("Current", "integer", 0),
            ("Ready", "integer", 0),
            ("Age", "string", 0),
            ("Containers", "string", 1),
            ("Images", "string", 1),
            ("Selector", "string", 1),
        ],
        _replicaset_row,
    ),
    "StatefulSet": (
        [
            ("Name", "string", 0),
            ("Ready", "string", 0),
            ("Age", "string", 0),
            ("Containers", "string", 1),
            ("Images", "string", 1),
        ],
        _statefulset_row,
    ),
    "Node": (
        [
            ("Name", "string", 0),
            ("Status", "string", 0),
            ("Roles", "string", 0),
            ("Age", "string", 0),
            ("Version", "string", 0),
            ("Internal-IP", "string", 1),
            ("External-IP", "string", 1),
            ("OS-Image", "string", 1),
            ("Kernel-Version", "string", 1),
            ("Container-Runtime", "string", 1),
        ],
        _node_row,
    ),
    "Service": (
        [
            ("Name", "string", 0),
            ("Type", "string", 0),
            ("Cluster-IP", "string", 0),
            ("External-IP", "string", 0),
            ("Port(s)", "string", 0),
            ("Age", "string", 0),
            ("Selector", "string", 1),
        ],
        _service_row,
    ),
    "Namespace": (
        [("Name", "string", 0), ("Status", "string", 0), ("Age", "string", 0)],
        lambda ns: [ns["metadata"]["name"], ns.get("status", {}).get("phase", "Active"), _age(ns)],
    ),
    "Event": (
        [
            ("Last Seen", "string", 0),
            ("Type", "string", 0),
            ("Reason", "string", 0),
            ("Object", "string", 0),
            ("Message", "string", 0),
        ],
        _event_row,
    ),
}
_DEFAULT: tuple[list[Column], Any] = (
    [("Name", "string", 0), ("Age", "string", 0)],
    lambda o: [o["metadata"]["name"], _age(o)],
)


def table(
    rt: ResourceType,
    items: list[Obj],
    resource_version: str,
    include: str = "Metadata",
    continue_token: str | None = None,
) -> Obj:
    columns, row = _COLUMNS.get(rt.kind, _DEFAULT)
    rows = []
    for obj in items:
        if include == "Object":
            embedded: Obj | None = obj
        elif include == "None":
            embedded = None
        else:
            embedded = {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": obj["metadata"],
            }
        rows.append({"cells": row(obj), "object": embedded})
    meta: Obj = {"resourceVersion": resource_version}
    if continue_token:
        meta["continue"] = continue_token
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": meta,
        "columnDefinitions": [
            {
                "name": name,
                "type": kind,
                "format": "name" if name == "Name" else "",
                "description": name,
                "priority": priority,
            }
            for name, kind, priority in columns
        ],
        "rows": rows,
    }
