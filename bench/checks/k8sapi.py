"""Kubernetes API versions: which are alpha, beta, deprecated or removed in a release.

The table follows the Kubernetes deprecated API migration guide: each entry is an API
version (optionally one kind of it), the release that deprecated it and the release
that stopped serving it, with the version to move to.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_STAGE = re.compile(r"^v\d+(alpha|beta)\d+$")


@dataclass(frozen=True)
class ApiLifecycle:
    api_version: str
    kind: str | None  # None: every kind of this API version
    deprecated_in: str | None
    removed_in: str | None
    replacement: str


def _entries() -> list[ApiLifecycle]:
    out: list[ApiLifecycle] = []

    def add(api: str, kinds: str, dep: str | None, rem: str | None, use: str) -> None:
        names: list[str | None] = [None] if kinds == "*" else list(kinds.split(","))
        for kind in names:
            out.append(ApiLifecycle(api, kind, dep, rem, use))

    add("extensions/v1beta1", "Deployment,DaemonSet,ReplicaSet", "1.9", "1.16", "apps/v1")
    add("extensions/v1beta1", "NetworkPolicy", "1.9", "1.16", "networking.k8s.io/v1")
    add("extensions/v1beta1", "PodSecurityPolicy", "1.11", "1.16", "Pod Security Admission")
    add("extensions/v1beta1", "Ingress", "1.14", "1.22", "networking.k8s.io/v1")
    add("apps/v1beta1", "*", "1.9", "1.16", "apps/v1")
    add("apps/v1beta2", "*", "1.9", "1.16", "apps/v1")
    add(
        "networking.k8s.io/v1beta1", "Ingress,IngressClass", "1.19", "1.22", "networking.k8s.io/v1"
    )
    add("rbac.authorization.k8s.io/v1beta1", "*", "1.17", "1.22", "rbac.authorization.k8s.io/v1")
    add("apiextensions.k8s.io/v1beta1", "*", "1.16", "1.22", "apiextensions.k8s.io/v1")
    add(
        "admissionregistration.k8s.io/v1beta1",
        "*",
        "1.16",
        "1.22",
        "admissionregistration.k8s.io/v1",
    )
    add("apiregistration.k8s.io/v1beta1", "*", "1.19", "1.22", "apiregistration.k8s.io/v1")
    add("scheduling.k8s.io/v1beta1", "*", "1.14", "1.22", "scheduling.k8s.io/v1")
    add("coordination.k8s.io/v1beta1", "*", "1.14", "1.22", "coordination.k8s.io/v1")
    add("certificates.k8s.io/v1beta1", "*", "1.19", "1.22", "certificates.k8s.io/v1")
    add(
        "storage.k8s.io/v1beta1",
        "CSIDriver,CSINode,StorageClass,VolumeAttachment",
        "1.19",
        "1.22",
        "storage.k8s.io/v1",
    )
    add("storage.k8s.io/v1beta1", "CSIStorageCapacity", "1.24", "1.27", "storage.k8s.io/v1")
    add("batch/v1beta1", "CronJob", "1.21", "1.25", "batch/v1")
    add("discovery.k8s.io/v1beta1", "*", "1.21", "1.25", "discovery.k8s.io/v1")
    add("events.k8s.io/v1beta1", "*", "1.19", "1.25", "events.k8s.io/v1")
    add("autoscaling/v2beta1", "*", "1.22", "1.25", "autoscaling/v2")
    add("autoscaling/v2beta2", "*", "1.23", "1.26", "autoscaling/v2")
    add("policy/v1beta1", "PodDisruptionBudget", "1.21", "1.25", "policy/v1")
    add("policy/v1beta1", "PodSecurityPolicy", "1.21", "1.25", "Pod Security Admission")
    add("node.k8s.io/v1beta1", "*", "1.20", "1.25", "node.k8s.io/v1")
    add(
        "flowcontrol.apiserver.k8s.io/v1beta1",
        "*",
        "1.23",
        "1.26",
        "flowcontrol.apiserver.k8s.io/v1",
    )
    add(
        "flowcontrol.apiserver.k8s.io/v1beta2",
        "*",
        "1.26",
        "1.29",
        "flowcontrol.apiserver.k8s.io/v1",
    )
    add(
        "flowcontrol.apiserver.k8s.io/v1beta3",
        "*",
        "1.29",
        "1.32",
        "flowcontrol.apiserver.k8s.io/v1",
    )
    add("v1", "ComponentStatus", "1.19", None, "the /livez and /readyz endpoints")
    add("v1", "Endpoints", "1.33", None, "discovery.k8s.io/v1 EndpointSlice")
    return out


LIFECYCLE = tuple(_entries())


def version_tuple(version: str) -> tuple[int, ...]:
    parts = re.findall(r"\d+", version.removeprefix("v"))[:2]
    return tuple(int(p) for p in parts)


def is_builtin_group(api_version: str) -> bool:
    """Core and ``*.k8s.io`` groups are Kubernetes' own; others come from CRDs."""
    group = api_version.rpartition("/")[0]
    if not group or "." not in group:
        return True
    return group.endswith(".k8s.io") and not group.endswith("x-k8s.io")


@dataclass(frozen=True)
class ApiStatus:
    api_version: str
    kind: str
    stage: str  # "stable", "alpha", "beta"
    deprecated_in: str | None = None
    removed_in: str | None = None
    replacement: str = ""

    @property
    def problems(self) -> list[str]:
        out = []
        if self.removed_in:
            out.append(f"removed in {self.removed_in} (use {self.replacement})")
        elif self.deprecated_in:
            out.append(f"deprecated since {self.deprecated_in} (use {self.replacement})")
        if self.stage != "stable" and not self.removed_in:
            out.append(f"{self.stage} API")
        return out


def api_status(api_version: str, kind: str, target: str) -> ApiStatus | None:
    """The lifecycle of an API version against `target` ("1.30"); None for CRD groups."""
    if not is_builtin_group(api_version):
        return None
    version = api_version.rpartition("/")[2]
    match = _STAGE.match(version)
    stage = match.group(1) if match else "stable"
    wanted = version_tuple(target)
    for entry in LIFECYCLE:
        if entry.api_version != api_version or entry.kind not in (None, kind):
            continue
        removed = (
            entry.removed_in if entry.removed_in and _reached(entry.removed_in, wanted) else None
        )
        deprecated = (
            entry.deprecated_in
            if entry.deprecated_in and _reached(entry.deprecated_in, wanted)
            else None
        )
        return ApiStatus(api_version, kind, stage, deprecated, removed, entry.replacement)
    return ApiStatus(api_version, kind, stage)


def _reached(release: str, target: tuple[int, ...]) -> bool:
    return version_tuple(release) <= target
