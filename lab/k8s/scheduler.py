"""Placing pods on nodes against allocatable resources, as kube-scheduler's filters do.

Filters: node unschedulable, node selector, resources fit (``NodeResourcesFit``: every
requested resource, extended ones included, must fit in allocatable minus what bound pods
request; a pod counts against ``pods``), and required pod anti-affinity by hostname.
Among the nodes that pass, the one with the fewest pods of the same owner, then the least
allocated CPU, wins (spreading, then ``LeastAllocated`` scoring).  A pod that fits
nowhere gets the scheduler's message, e.g. ``0/3 nodes are available: 3 Insufficient
intel.com/sriov_netdevice. preemption: ...``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lab.k8s.quantity import parse_quantity
from lab.k8s.selectors import selector_matches

Obj = dict[str, Any]


def pod_requests(pod: Obj) -> dict[str, float]:
    """Sum of the containers' requests (init containers: their maximum), plus one pod."""
    total: dict[str, float] = {}
    for c in pod.get("spec", {}).get("containers") or []:
        for name, qty in ((c.get("resources") or {}).get("requests") or {}).items():
            total[name] = total.get(name, 0.0) + parse_quantity(qty)
    for c in pod.get("spec", {}).get("initContainers") or []:
        for name, qty in ((c.get("resources") or {}).get("requests") or {}).items():
            total[name] = max(total.get(name, 0.0), parse_quantity(qty))
    total["pods"] = total.get("pods", 0.0) + 1
    return total


def holds_resources(pod: Obj) -> bool:
    """Bound pods hold their requests until they are gone or have finished."""
    phase = pod.get("status", {}).get("phase")
    return bool(pod.get("spec", {}).get("nodeName")) and phase not in ("Succeeded", "Failed")


@dataclass(frozen=True)
class Placement:
    node: str | None
    message: str  # why no node fits, when node is None


def _owner_uid(pod: Obj) -> str | None:
    for ref in pod.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return str(ref.get("uid"))
    return None


def _anti_affinity_terms(pod: Obj) -> list[Obj]:
    affinity = pod.get("spec", {}).get("affinity") or {}
    anti = affinity.get("podAntiAffinity") or {}
    return list(anti.get("requiredDuringSchedulingIgnoredDuringExecution") or [])


def place(pod: Obj, nodes: list[Obj], bound: list[Obj]) -> Placement:
    requests = pod_requests(pod)
    used: dict[str, dict[str, float]] = {n["metadata"]["name"]: {} for n in nodes}
    on_node: dict[str, list[Obj]] = {n["metadata"]["name"]: [] for n in nodes}
    for other in bound:
        node = other["spec"]["nodeName"]
        if node in used:
            for resource, amount in pod_requests(other).items():
                used[node][resource] = used[node].get(resource, 0.0) + amount
            on_node[node].append(other)
    reasons: Counter[str] = Counter()
    fits: list[tuple[int, float, str]] = []
    owner = _owner_uid(pod)
    for node in nodes:
        name = node["metadata"]["name"]
        failed = _filter(pod, node, requests, used[name], on_node[name])
        if failed:
            reasons.update(failed)
            continue
        siblings = sum(1 for o in on_node[name] if owner and _owner_uid(o) == owner)
        cpu = parse_quantity(node["status"]["allocatable"].get("cpu", "0")) or 1.0
        fits.append((siblings, used[name].get("cpu", 0.0) / cpu, name))
    if fits:
        return Placement(min(fits)[2], "")
    return Placement(None, unschedulable_message(len(nodes), reasons))


def _filter(
    pod: Obj, node: Obj, requests: Mapping[str, float], used: Mapping[str, float], here: list[Obj]
) -> list[str]:
    if node.get("spec", {}).get("unschedulable"):
        return ["node(s) were unschedulable"]
    labels = node["metadata"].get("labels") or {}
    selector = pod.get("spec", {}).get("nodeSelector") or {}
    if any(labels.get(k) != v for k, v in selector.items()):
        return ["node(s) didn't match Pod's node affinity/selector"]
    allocatable = node["status"].get("allocatable") or {}
    failed = []
    for name, amount in sorted(requests.items()):
        if amount <= 0:
            continue
        have = parse_quantity(allocatable.get(name, "0"))
        if used.get(name, 0.0) + amount > have:
            failed.append("Too many pods" if name == "pods" else f"Insufficient {name}")
    if failed:
        return failed
    for term in _anti_affinity_terms(pod):
        if term.get("topologyKey") != "kubernetes.io/hostname":
            continue
        selector_obj = term.get("labelSelector") or {}
        if any(
            selector_matches(selector_obj, o["metadata"].get("labels") or {})
            and not o["metadata"].get("deletionTimestamp")
            for o in here
        ):
            return ["node(s) didn't match pod anti-affinity rules"]
    return []


def unschedulable_message(node_count: int, reasons: Counter[str]) -> str:
    """kube-scheduler's FitError text, reasons sorted, then its preemption summary."""
    parts = ", ".join(f"{count} {reason}" for reason, count in sorted(reasons.items()))
    resource_only = all(r.startswith("Insufficient") or r == "Too many pods" for r in reasons)
    why = (
        "No preemption victims found for incoming pod"
        if resource_only
        else "Preemption is not helpful for scheduling"
    )
    return (
        f"0/{node_count} nodes are available: {parts}. "
        f"preemption: 0/{node_count} nodes are available: {node_count} {why}."
    )
