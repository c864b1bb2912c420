"""The resource types the lab's API server knows, as discovery documents them.

Each `ResourceType` is one REST collection: where it lives (group, version, plural),
whether it is namespaced, which verbs it answers and which subresources it has.  The
discovery documents (`/api/v1`, `/apis/apps/v1`, ...) are generated from this table, so
what kubectl discovers is exactly what the server serves.
"""

from __future__ import annotations

from dataclasses import dataclass

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
READ_VERBS = ("get", "list", "watch")


@dataclass(frozen=True)
class ResourceType:
    group: str  # "" for the core group
    version: str
    plural: str
    singular: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    subresources: tuple[str, ...] = ()  # "status", "scale", "log"
    categories: tuple[str, ...] = ()
    has_spec: bool = True  # whether writes to the main resource bump metadata.generation

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def api_version(self) -> str:
        return self.group_version

    @property
    def qualified(self) -> str:
        """The name kube-apiserver uses in messages: ``deployments.apps``, ``pods``."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def kind_qualified(self) -> str:
        """``Deployment.apps``, ``Pod``: the kind as named in Invalid messages."""
        return f"{self.kind}.{self.group}" if self.group else self.kind


def _core(
    plural: str,
    singular: str,
    kind: str,
    namespaced: bool = True,
    *,
    short_names: tuple[str, ...] = (),
    verbs: tuple[str, ...] = ALL_VERBS,
    subresources: tuple[str, ...] = (),
    categories: tuple[str, ...] = (),
    has_spec: bool = True,
) -> ResourceType:
    return ResourceType(
        "",
        "v1",
        plural,
        singular,
        kind,
        namespaced,
        short_names,
        verbs,
        subresources,
        categories,
        has_spec,
    )


RESOURCE_TYPES: tuple[ResourceType, ...] = (
    _core(
        "namespaces",
        "namespace",
        "Namespace",
        False,
        short_names=("ns",),
        subresources=("status",),
        verbs=("create", "delete", "get", "list", "patch", "update", "watch"),
    ),
    _core("nodes", "node", "Node", False, short_names=("no",), subresources=("status",)),
    _core(
        "pods",
        "pod",
        "Pod",
        short_names=("po",),
        subresources=("status", "log", "exec", "eviction"),
        categories=("all",),
    ),
    _core(
        "services",
        "service",
        "Service",
        short_names=("svc",),
        subresources=("status",),
        categories=("all",),
    ),
    _core("endpoints", "endpoints", "Endpoints", short_names=("ep",), has_spec=False),
    _core("configmaps", "configmap", "ConfigMap", short_names=("cm",), has_spec=False),
    _core("secrets", "secret", "Secret", has_spec=False),
    _core(
        "serviceaccounts", "serviceaccount", "ServiceAccount", short_names=("sa",), has_spec=False
    ),
    _core("events", "event", "Event", short_names=("ev",), has_spec=False),
    _core(
        "persistentvolumeclaims",
        "persistentvolumeclaim",
        "PersistentVolumeClaim",
        short_names=("pvc",),
        subresources=("status",),
    ),
    ResourceType(
        "apps",
        "v1",
        "deployments",
        "deployment",
        "Deployment",
        True,
        short_names=("deploy",),
        subresources=("status", "scale"),
        categories=("all",),
    ),
    ResourceType(
        "apps",
        "v1",
        "statefulsets",
        "statefulset",
        "StatefulSet",
        True,
        short_names=("sts",),
        subresources=("status", "scale"),
        categories=("all",),
    ),
    ResourceType(
        "apps",
        "v1",
        "replicasets",
        "replicaset",
        "ReplicaSet",
        True,
        short_names=("rs",),
        subresources=("status", "scale"),
        categories=("all",),
    ),
    ResourceType(
        "apps",
        "v1",
        "controllerrevisions",
        "controllerrevision",
        "ControllerRevision",
        True,
        has_spec=False,
    ),
    ResourceType(
        "policy",
        "v1",
        "poddisruptionbudgets",
        "poddisruptionbudget",
        "PodDisruptionBudget",
        True,
        short_names=("pdb",),
        subresources=("status",),
    ),
    ResourceType("rbac.authorization.k8s.io", "v1", "roles", "role", "Role", True, has_spec=False),
    ResourceType(
        "rbac.authorization.k8s.io",
        "v1",
        "rolebindings",
        "rolebinding",
        "RoleBinding",
        True,
        has_spec=False,
    ),
    ResourceType(
        "networking.k8s.io",
        "v1",
        "networkpolicies",
        "networkpolicy",
        "NetworkPolicy",
        True,
        short_names=("netpol",),
    ),
    ResourceType(
        "k8s.cni.cncf.io",
        "v1",
        "network-attachment-definitions",
        "network-attachment-definition",
        "NetworkAttachmentDefinition",
        True,
        short_names=("net-attach-def",),
    ),
    ResourceType(
        "autoscaling",
        "v1",
        "horizontalpodautoscalers",
        "horizontalpodautoscaler",
        "HorizontalPodAutoscaler",
        True,
        short_names=("hpa",),
        subresources=("status",),
        categories=("all",),
    ),
)

# The groups in the order /apis lists them, with their one served version.
GROUPS: tuple[str, ...] = tuple(dict.fromkeys(r.group for r in RESOURCE_TYPES if r.group))


def by_path(group: str, version: str, plural: str) -> ResourceType | None:
    for rt in RESOURCE_TYPES:
        if (rt.group, rt.version, rt.plural) == (group, version, plural):
            return rt
    return None


def by_kind(api_version: str, kind: str) -> ResourceType | None:
    for rt in RESOURCE_TYPES:
        if rt.api_version == api_version and rt.kind == kind:
            return rt
    return None


def group_versions() -> list[tuple[str, str]]:
    return list(dict.fromkeys((r.group, r.version) for r in RESOURCE_TYPES))


def discovery_resources(group: str, version: str) -> list[dict[str, object]]:
    """The ``APIResourceList.resources`` of one group-version, subresources included."""
    out: list[dict[str, object]] = []
    for rt in RESOURCE_TYPES:
        if (rt.group, rt.version) != (group, version):
            continue
        entry: dict[str, object] = {
            "name": rt.plural,
            "singularName": rt.singular,
            "namespaced": rt.namespaced,
            "kind": rt.kind,
            "verbs": list(rt.verbs),
        }
        if rt.short_names:
            entry["shortNames"] = list(rt.short_names)
        if rt.categories:
            entry["categories"] = list(rt.categories)
        out.append(entry)
        for sub in rt.subresources:
            sub_entry: dict[str, object] = {
                "name": f"{rt.plural}/{sub}",
                "singularName": "",
                "namespaced": rt.namespaced,
                "kind": rt.kind,
                "verbs": ["get", "patch", "update"],
            }
            if sub == "scale":
                sub_entry.update(group="autoscaling", version="v1", kind="Scale")
            elif sub == "log":
                sub_entry.update(kind="Pod", verbs=["get"])
            elif sub == "exec":
                sub_entry.update(kind="PodExecOptions", verbs=["create", "get"])
            elif sub == "eviction":
                sub_entry.update(group="policy", version="v1", kind="Eviction", verbs=["create"])
            out.append(sub_entry)
    return out
