"""Defaulting and validation of objects on create and update, as kube-apiserver does.

Only what the clients and the controller loop rely on is defaulted (deployment strategy,
pod restart policy, service cluster IP, ...), and only rules whose violation would make
the lab behave differently from a cluster are validated (names, selectors matching
template labels, container names and images, immutable selectors, replica counts).
"""

from __future__ import annotations

import base64
import itertools
import re
from typing import Any

from lab.k8s.errors import ApiError, invalid
from lab.k8s.resources import ResourceType
from lab.k8s.selectors import selector_matches

Obj = dict[str, Any]

_DNS1123_SUBDOMAIN = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_NAME_KINDS = {"Namespace", "Service"}  # names that must be DNS-1123 labels
_cluster_ips = itertools.count(10)
_ZERO_STATUS = {
    "StatefulSet": ("replicas", "availableReplicas"),
    "ReplicaSet": ("replicas",),
    "PodDisruptionBudget": (
        "currentHealthy",
        "desiredHealthy",
        "disruptionsAllowed",
        "expectedPods",
    ),
}


def default(rt: ResourceType, obj: Obj) -> None:
    kind = rt.kind
    if "status" in rt.subresources:
        # Required status fields start at zero, as the API types default them.
        status = obj.setdefault("status", {})
        for field in _ZERO_STATUS.get(kind, ()):
            status.setdefault(field, 0)
    if kind == "Namespace":
        labels = obj["metadata"].setdefault("labels", {})
        labels["kubernetes.io/metadata.name"] = obj["metadata"]["name"]
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
        obj.setdefault("status", {"phase": "Active"})
    elif kind == "Deployment":
        spec = obj.setdefault("spec", {})
        spec.setdefault("replicas", 1)
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("progressDeadlineSeconds", 600)
        strategy = spec.setdefault("strategy", {})
        strategy.setdefault("type", "RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            rolling = strategy.setdefault("rollingUpdate", {})
            rolling.setdefault("maxSurge", "25%")
            rolling.setdefault("maxUnavailable", "25%")
        _default_pod_spec(spec.setdefault("template", {}).setdefault("spec", {}))
    elif kind == "StatefulSet":
        spec = obj.setdefault("spec", {})
        spec.setdefault("replicas", 1)
        spec.setdefault("podManagementPolicy", "OrderedReady")
        spec.setdefault("revisionHistoryLimit", 10)
        strategy = spec.setdefault("updateStrategy", {"type": "RollingUpdate"})
        if strategy.get("type") == "RollingUpdate":
            strategy.setdefault("rollingUpdate", {"partition": 0})
        _default_pod_spec(spec.setdefault("template", {}).setdefault("spec", {}))
    elif kind == "ReplicaSet":
        spec = obj.setdefault("spec", {})
        spec.setdefault("replicas", 1)
        _default_pod_spec(spec.setdefault("template", {}).setdefault("spec", {}))
    elif kind == "Pod":
        _default_pod_spec(obj.setdefault("spec", {}))
        status = obj.setdefault("status", {})
        status.setdefault("phase", "Pending")
        status.setdefault("qosClass", _qos_class(obj["spec"]))
    elif kind == "Service":
        _default_service(obj.setdefault("spec", {}))
    elif kind == "Secret":
        obj.setdefault("type", "Opaque")
        string_data = obj.pop("stringData", None) or {}
        data = obj.setdefault("data", {})
        for key, value in string_data.items():
            data[key] = base64.b64encode(str(value).encode()).decode()


def _default_pod_spec(spec: Obj) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("securityContext", {})
    for container in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
        image = str(container.get("image", ""))
        tag = image.rsplit("/", 1)[-1]
        latest = ":" not in tag or tag.endswith(":latest")
        container.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
        container.setdefault("terminationMessagePath", "/dev/termination-log")
        container.setdefault("terminationMessagePolicy", "File")
        resources = container.setdefault("resources", {})
        # Requests default to limits where only limits are given.
        limits = resources.get("limits") or {}
        if limits:
            requests = resources.setdefault("requests", {})
            for name, value in limits.items():
                requests.setdefault(name, value)
        for port in container.get("ports") or []:
            port.setdefault("protocol", "TCP")
        for probe_name in ("livenessProbe", "readinessProbe", "startupProbe"):
            probe = container.get(probe_name)
            if isinstance(probe, dict):
                probe.setdefault("initialDelaySeconds", 0)
                probe.setdefault("periodSeconds", 10)
                probe.setdefault("timeoutSeconds", 1)
                probe.setdefault("successThreshold", 1)
                probe.setdefault("failureThreshold", 3)


def _qos_class(spec: Obj) -> str:
    containers = spec.get("containers") or []
    guaranteed = bool(containers)
    best_effort = True
    for c in containers:
        res = c.get("resources") or {}
        req, lim = res.get("requests") or {}, res.get("limits") or {}
        if req or lim:
            best_effort = False
        if not all(k in lim and lim[k] == req.get(k) for k in ("cpu", "memory")):
            guaranteed = False
    if best_effort:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def _default_service(spec: Obj) -> None:
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    if spec.get("clusterIP") != "None":
        n = next(_cluster_ips)
        spec.setdefault("clusterIP", f"10.96.{n // 250}.{n % 250 + 1}")
        spec.setdefault("clusterIPs", [spec["clusterIP"]])
    spec.setdefault("ipFamilies", ["IPv4"])
    spec.setdefault("ipFamilyPolicy", "SingleStack")
    spec.setdefault("internalTrafficPolicy", "Cluster")
    for port in spec.get("ports") or []:
        port.setdefault("protocol", "TCP")
        port.setdefault("targetPort", port.get("port"))


def validate(rt: ResourceType, obj: Obj, old: Obj | None) -> None:
    """Raise 422 Invalid with every problem found."""
    meta = obj.get("metadata") or {}
    name = str(meta.get("name", ""))
    causes: list[tuple[str, str]] = []
    pattern = _DNS1123_LABEL if rt.kind in _LABEL_NAME_KINDS else _DNS1123_SUBDOMAIN
    if not name:
        causes.append(("metadata.name", "Required value: name or generateName is required"))
    elif not pattern.match(name) or len(name) > 253:
        causes.append(
            (
                "metadata.name",
                f'Invalid value: "{name}": a lowercase RFC 1123 name must consist of lower '
                "case alphanumeric characters, '-' or '.', and must start and end with an "
                "alphanumeric character",
            )
        )
    spec = obj.get("spec") or {}
    if rt.kind in ("Deployment", "StatefulSet", "ReplicaSet"):
        causes.extend(_workload_causes(spec))
        if old is not None and (old.get("spec") or {}).get("selector") != spec.get("selector"):
            causes.append(("spec.selector", "Invalid value: field is immutable"))
        causes.extend(
            _pod_spec_causes((spec.get("template") or {}).get("spec") or {}, "spec.template.spec")
        )
    elif rt.kind == "Pod":
        causes.extend(_pod_spec_causes(spec, "spec"))
        if old is not None and _pod_immutable(old) != _pod_immutable(obj):
            causes.append(
                (
                    "spec",
                    "Forbidden: pod updates may not change fields other than "
                    "`spec.containers[*].image`, `spec.activeDeadlineSeconds`, "
                    "`spec.tolerations` (only additions) or `spec.terminationGracePeriodSeconds`",
                )
            )
    if causes:
        raise invalid(rt, name or "(unnamed)", causes)


def _pod_immutable(pod: Obj) -> Any:
    spec = dict(pod.get("spec") or {})
    for field in (
        "activeDeadlineSeconds",
        "tolerations",
        "terminationGracePeriodSeconds",
        "nodeName",
    ):
        spec.pop(field, None)
    spec["containers"] = [
        {k: v for k, v in c.items() if k != "image"} for c in spec.get("containers") or []
    ]
    return spec


def _workload_causes(spec: Obj) -> list[tuple[str, str]]:
    causes: list[tuple[str, str]] = []
    replicas = spec.get("replicas", 1)
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
        causes.append(
            ("spec.replicas", f"Invalid value: {replicas}: must be greater than or equal to 0")
        )
    selector = spec.get("selector")
    labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    if not selector:
        causes.append(("spec.selector", "Required value"))
    elif not selector_matches(selector, labels):
        causes.append(
            (
                "spec.template.metadata.labels",
                f"Invalid value: {labels}: `selector` does not match template `labels`",
            )
        )
    return causes


def _pod_spec_causes(spec: Obj, where: str) -> list[tuple[str, str]]:
    causes: list[tuple[str, str]] = []
    containers = spec.get("containers")
    if not containers:
        causes.append((f"{where}.containers", "Required value"))
        return causes
    seen: set[str] = set()
    for i, c in enumerate(containers):
        cname = c.get("name")
        if not cname:
            causes.append((f"{where}.containers[{i}].name", "Required value"))
        elif cname in seen:
            causes.append((f"{where}.containers[{i}].name", f'Duplicate value: "{cname}"'))
        seen.add(str(cname))
        if not c.get("image"):
            causes.append((f"{where}.containers[{i}].image", "Required value"))
        res = c.get("resources") or {}
        for rname, qty in (res.get("requests") or {}).items():
            limit = (res.get("limits") or {}).get(rname)
            if _extended(rname) and limit is not None and str(limit) != str(qty):
                causes.append(
                    (
                        f"{where}.containers[{i}].resources.requests",
                        f'Invalid value: "{qty}": must be equal to {rname} limit of {limit}',
                    )
                )
        requests = res.get("requests") or {}
        if any(r.startswith("hugepages-") for r in requests) and not {"cpu", "memory"} & set(
            requests
        ):
            causes.append(
                (
                    f"{where}.containers[{i}].resources.requests",
                    "Forbidden: HugePages require cpu or memory",
                )
            )
    return causes


def _extended(name: str) -> bool:
    """Extended (device-plugin) and hugepages resources: requests must equal limits."""
    return ("/" in name and not name.startswith("kubernetes.io/")) or name.startswith("hugepages-")


def ensure_namespace_matches(path_ns: str | None, obj: Obj) -> None:
    body_ns = (obj.get("metadata") or {}).get("namespace")
    if path_ns and body_ns and body_ns != path_ns:
        raise ApiError(
            400,
            "BadRequest",
            "the namespace of the provided object does not match the namespace sent on the "
            "request",
        )
