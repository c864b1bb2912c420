"""The controller loop: what kube-controller-manager and kube-scheduler do for the lab.

One thread runs passes.  A pass syncs, in order: namespaces being deleted, the garbage
collector (dependents of deleted owners; foreground deletion), deployments (owning
replica sets, rolling updates with maxSurge and maxUnavailable, or Recreate), stateful
sets (ordered pods ``name-0..n-1``), replica sets (owning pods), the scheduler, the
kubelet, and status: replica sets, deployments and pod disruption budgets.  A pass runs
when any object changes and when the next planned transition in lab time is due, so
timings follow the virtual clock and nothing waits on a fixed polling interval.

The rolling update follows the deployment controller's arithmetic (``reconcileNewReplicaSet``
and ``reconcileOldReplicaSets``): the new replica set grows while the total stays within
``replicas + maxSurge``; old ones shrink while the available pods stay at least
``replicas - maxUnavailable``, unhealthy old pods first.  maxSurge rounds up and
maxUnavailable rounds down from percentages; both zero means maxUnavailable 1.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import random
import threading
import time
from datetime import UTC, datetime
from typing import Any

from lab.k8s import admission
from lab.k8s.errors import ApiError
from lab.k8s.events import Recorder
from lab.k8s.kubelet import Clock, Kubelet, ModelLookup, PodTiming, ReplicaSink
from lab.k8s.nodes import ClusterShape, node_object
from lab.k8s.resources import RESOURCE_TYPES, ResourceType, by_kind
from lab.k8s.scheduler import holds_resources, place
from lab.k8s.selectors import selector_matches, selector_text
from lab.k8s.store import Event, Store, now_rfc3339

log = logging.getLogger(__name__)

Obj = dict[str, Any]

REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
HASH_LABEL = "pod-template-hash"
SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
MAX_PASS_WAIT_S = 1.0
MANAGED_ANNOTATION = (
    "lab.cnfbench.io/managed-by"  # wall seconds between passes when nothing is due
)


def _rt(api_version: str, kind: str) -> ResourceType:
    rt = by_kind(api_version, kind)
    assert rt is not None, kind
    return rt


POD = _rt("v1", "Pod")
NODE = _rt("v1", "Node")
NAMESPACE = _rt("v1", "Namespace")
DEPLOYMENT = _rt("apps/v1", "Deployment")
REPLICASET = _rt("apps/v1", "ReplicaSet")
STATEFULSET = _rt("apps/v1", "StatefulSet")
REVISION = _rt("apps/v1", "ControllerRevision")
PDB = _rt("policy/v1", "PodDisruptionBudget")
SERVICE = _rt("v1", "Service")
ENDPOINTS = _rt("v1", "Endpoints")
# Types whose objects may have owners (events never do; skipping them keeps passes cheap).
OWNED_TYPES = tuple(rt for rt in RESOURCE_TYPES if rt.kind != "Event")


def safe_encode(value: int, length: int = 10) -> str:
    out = []
    for _ in range(length):
        value, digit = divmod(value, len(SAFE_ALPHABET))
        out.append(SAFE_ALPHABET[digit])
    return "".join(out).rstrip(SAFE_ALPHABET[0]) or SAFE_ALPHABET[0]


def template_hash(template: Obj) -> str:
    """A stable hash of a pod template, as the ``pod-template-hash`` label carries."""
    text = json.dumps(template, sort_keys=True, separators=(",", ":"))
    return safe_encode(int(hashlib.sha256(text.encode()).hexdigest()[:12], 16))


def resolve_int_or_percent(value: Any, total: int, round_up: bool) -> int:
    if isinstance(value, str) and value.endswith("%"):
        fraction = float(value[:-1]) / 100.0 * total
        return math.ceil(fraction - 1e-9) if round_up else math.floor(fraction + 1e-9)
    return int(value)


def owned_by(obj: Obj, uid: str) -> bool:
    return any(ref.get("uid") == uid for ref in obj["metadata"].get("ownerReferences") or [])


def controller_ref(owner: Obj, rt: ResourceType) -> Obj:
    return {
        "apiVersion": rt.api_version,
        "kind": rt.kind,
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def is_active(pod: Obj) -> bool:
    return not pod["metadata"].get("deletionTimestamp") and pod.get("status", {}).get(
        "phase"
    ) not in ("Succeeded", "Failed")


def condition(obj: Obj, kind: str) -> Obj | None:
    for c in obj.get("status", {}).get("conditions") or []:
        if c.get("type") == kind:
            return dict(c)
    return None


def pod_ready(pod: Obj) -> bool:
    c = condition(pod, "Ready")
    return c is not None and c.get("status") == "True"


class Controller:
    """The controllers, the scheduler and the kubelet of the lab cluster."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        *,
        shape: ClusterShape | None = None,
        timing: PodTiming | None = None,
        sink: ReplicaSink | None = None,
        models: ModelLookup | None = None,
        seed: int = 1,
    ) -> None:
        self.store = store
        self.clock = clock
        self.shape = shape or ClusterShape()
        self.events = Recorder(store)
        wall_epoch = time.time() - clock.now_s() / clock.time_scale
        self.kubelet = Kubelet(
            store,
            clock,
            shape=self.shape,
            timing=timing or PodTiming(),
            recorder=self.events,
            sink=sink,
            models=models,
            wall_epoch_s=wall_epoch,
        )
        self._rng = random.Random(seed)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.RLock()  # one pass at a time
        self._due: list[float] = []  # lab times at which the pass in progress wants the next one
        self._unschedulable: dict[str, str] = {}  # pod uid -> last message
        self._progress: dict[str, float] = {}  # deployment uid -> wall time of last progress
        store.subscribe(self._on_event)

    # --- lifecycle ----------------------------------------------------------------------

    def bootstrap(self) -> None:
        """The objects a fresh cluster has: system namespaces and the worker nodes."""
        for name in ("default", "kube-system", "kube-public", "kube-node-lease"):
            ns: Obj = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
            admission.default(NAMESPACE, ns)
            self.store.create(NAMESPACE, ns)
        for i in range(self.shape.nodes):
            self.store.create(NODE, node_object(self.shape, i, now_rfc3339()))

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="lab-k8s-controller", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.kubelet.close()

    def wake(self) -> None:
        """Run a pass now (after a change the store does not see, such as a signal)."""
        self._wake.set()

    def _on_event(self, event: Event) -> None:
        if event.rt.kind != "Event":
            self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                due = self.run_pass()
            except ApiError as exc:
                # A conflicting write from a client: the next pass sees the new state.
                log.debug("controller pass interrupted: %s", exc.message)
                due = None
            wait = MAX_PASS_WAIT_S
            if due is not None:
                wait = min(wait, max(0.0, (due - self.clock.now_s()) / self.clock.time_scale))
            self._wake.wait(wait)

    def run_pass(self) -> float | None:
        """One pass over everything; the lab time of the next planned transition."""
        with self._lock:
            self._due = []
            self._namespaces()
            self._garbage_collect()
            for d in self.store.snapshot(DEPLOYMENT)[0]:
                self._sync_deployment(d)
            for s in self.store.snapshot(STATEFULSET)[0]:
                self._sync_statefulset(s)
            for rs in self.store.snapshot(REPLICASET)[0]:
                self._sync_replicaset(rs)
            self._schedule()
            due = self.kubelet.sync(self.store.snapshot(POD)[0])
            for rs in self.store.snapshot(REPLICASET)[0]:
                self._replicaset_status(rs)
            for d in self.store.snapshot(DEPLOYMENT)[0]:
                self._deployment_status(d)
            for s in self.store.snapshot(STATEFULSET)[0]:
                self._statefulset_status(s)
            for pdb in self.store.snapshot(PDB)[0]:
                self._pdb_status(pdb)
            services = self.store.snapshot(SERVICE)[0]
            for svc in services:
                self._endpoints(svc)
            self._orphaned_endpoints(services)
            if due is not None:
                self._due.append(due)
            return min(self._due, default=None)

    # --- deletion -----------------------------------------------------------------------

    def delete(self, rt: ResourceType, obj: Obj, grace_s: int | None, propagation: str) -> Obj:
        """Delete as the API server does; returns the object as the response shows it."""
        meta = obj["metadata"]
        ns, name = meta.get("namespace"), meta["name"]
        if meta.get("deletionTimestamp") and rt.kind != "Pod":
            return obj
        if propagation == "Orphan":
            self._orphan(meta["uid"])
        if rt.kind == "Pod":
            return self._delete_pod(obj, grace_s)
        if rt.kind == "Namespace" or propagation == "Foreground" or meta.get("finalizers"):

            def mark(o: Obj) -> None:
                o["metadata"]["deletionTimestamp"] = now_rfc3339()
                o["metadata"]["deletionGracePeriodSeconds"] = 0
                if propagation == "Foreground":
                    finalizers = o["metadata"].setdefault("finalizers", [])
                    if "foregroundDeletion" not in finalizers:
                        finalizers.append("foregroundDeletion")
                if rt.kind == "Namespace":
                    o["status"] = {"phase": "Terminating"}

            marked = self.store.mutate(rt, ns, name, mark)
            self._wake.set()
            return marked or obj
        return self.store.remove(rt, ns, name)

    def _delete_pod(self, pod: Obj, grace_s: int | None) -> Obj:
        meta = pod["metadata"]
        if grace_s is None:
            grace_s = int(pod["spec"].get("terminationGracePeriodSeconds", 30))
        bound = bool(pod["spec"].get("nodeName"))
        running = self.kubelet.pod_running(meta["namespace"], meta["name"])
        if grace_s <= 0 or not bound or not running:
            return self.store.remove(POD, meta["namespace"], meta["name"])
        if meta.get("deletionTimestamp"):
            return pod

        def mark(o: Obj) -> None:
            when = datetime.now(UTC).timestamp() + grace_s
            o["metadata"]["deletionTimestamp"] = datetime.fromtimestamp(when, UTC).strftime(
                "%Y-%m-%dT%H:%M:%SZ"
            )
            o["metadata"]["deletionGracePeriodSeconds"] = grace_s

        marked = self.store.mutate(POD, meta["namespace"], meta["name"], mark)
        self._wake.set()
        return marked or pod

    def _orphan(self, uid: str) -> None:
        for rt in RESOURCE_TYPES:
            for obj in self.store.snapshot(rt)[0]:
                if owned_by(obj, uid):

                    def drop(o: Obj) -> None:
                        refs = o["metadata"].get("ownerReferences") or []
                        o["metadata"]["ownerReferences"] = [r for r in refs if r["uid"] != uid]

                    self.store.mutate(
                        rt, obj["metadata"].get("namespace"), obj["metadata"]["name"], drop
                    )

    def _namespaces(self) -> None:
        for ns in self.store.snapshot(NAMESPACE)[0]:
            if not ns["metadata"].get("deletionTimestamp"):
                continue
            name = ns["metadata"]["name"]
            remaining = 0
            for rt in RESOURCE_TYPES:
                if not rt.namespaced:
                    continue
                for obj in self.store.snapshot(rt, name)[0]:
                    remaining += 1
                    if not obj["metadata"].get("deletionTimestamp"):
                        self.delete(rt, obj, None, "Background")
            if remaining == 0:
                self.store.remove(NAMESPACE, None, name)

    def _garbage_collect(self) -> None:
        uids = self.store.uids()
        dependents: dict[str, int] = {}
        for rt in OWNED_TYPES:
            for obj in self.store.snapshot(rt)[0]:
                refs = obj["metadata"].get("ownerReferences") or []
                for ref in refs:
                    dependents[ref["uid"]] = dependents.get(ref["uid"], 0) + 1
                orphaned = refs and not any(ref.get("uid") in uids for ref in refs)
                if orphaned and not obj["metadata"].get("deletionTimestamp"):
                    self.delete(rt, obj, None, "Background")
        # Foreground deletion: an owner goes once its dependents are gone.
        for rt in OWNED_TYPES:
            for obj in self.store.snapshot(rt)[0]:
                meta = obj["metadata"]
                if "foregroundDeletion" not in (meta.get("finalizers") or []):
                    continue
                if not meta.get("deletionTimestamp"):
                    continue
                for other_rt in OWNED_TYPES:
                    for dep in self.store.snapshot(other_rt)[0]:
                        if owned_by(dep, meta["uid"]) and not dep["metadata"].get(
                            "deletionTimestamp"
                        ):
                            self.delete(other_rt, dep, None, "Foreground")
                if dependents.get(meta["uid"], 0) == 0:
                    self.store.remove(rt, meta.get("namespace"), meta["name"])

    # --- deployments --------------------------------------------------------------------

    def _owned(self, rt: ResourceType, owner: Obj, *, copy: bool = False) -> list[Obj]:
        ns, uid = owner["metadata"]["namespace"], owner["metadata"]["uid"]
        read = self.store.list if copy else self.store.snapshot
        return [o for o in read(rt, ns, None)[0] if owned_by(o, uid)]

    def _sync_deployment(self, d: Obj) -> None:
        if d["metadata"].get("deletionTimestamp"):
            return
        spec = d["spec"]
        # Copies: the rolling update keeps its arithmetic in them as it scales.
        rss = sorted(
            self._owned(REPLICASET, d, copy=True), key=lambda r: r["metadata"]["creationTimestamp"]
        )
        template = spec["template"]
        digest = template_hash(template)
        new = next((r for r in rss if r["metadata"]["labels"].get(HASH_LABEL) == digest), None)
        olds = [r for r in rss if r is not new]
        replicas = int(spec.get("replicas", 1))
        if new is None:
            new = self._create_replicaset(d, digest, olds)
        self._copy_revision(d, new)
        if spec.get("paused"):
            return
        strategy = spec.get("strategy") or {}
        if strategy.get("type") == "Recreate":
            self._recreate(d, new, olds, replicas)
        else:
            self._rolling(d, new, olds, replicas, strategy.get("rollingUpdate") or {})
        self._clean_history(d, olds)

    def _revision(self, d: Obj) -> str | None:
        return (d["metadata"].get("annotations") or {}).get(REVISION_ANNOTATION)

    def _create_replicaset(self, d: Obj, digest: str, olds: list[Obj]) -> Obj:
        revisions = [
            int((r["metadata"].get("annotations") or {}).get(REVISION_ANNOTATION, "0"))
            for r in olds
        ]
        revision = str(max(revisions, default=0) + 1)
        template = json.loads(json.dumps(d["spec"]["template"]))
        template.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = digest
        selector = json.loads(json.dumps(d["spec"]["selector"]))
        selector.setdefault("matchLabels", {})[HASH_LABEL] = digest
        any_old = any(r["spec"].get("replicas", 0) > 0 for r in olds)
        replicas = 0 if any_old else int(d["spec"].get("replicas", 1))
        rs: Obj = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": f"{d['metadata']['name']}-{digest}",
                "namespace": d["metadata"]["namespace"],
                "labels": dict(template["metadata"]["labels"]),
                "annotations": {
                    REVISION_ANNOTATION: revision,
                    "deployment.kubernetes.io/desired-replicas": str(d["spec"].get("replicas", 1)),
                    "deployment.kubernetes.io/max-replicas": str(d["spec"].get("replicas", 1)),
                },
                "ownerReferences": [controller_ref(d, DEPLOYMENT)],
            },
            "spec": {
                "replicas": replicas,
                "minReadySeconds": d["spec"].get("minReadySeconds", 0),
                "selector": selector,
                "template": template,
            },
        }
        admission.default(REPLICASET, rs)
        created = self.store.create(REPLICASET, rs)
        self.events.record(
            d,
            "Normal",
            "ScalingReplicaSet",
            f"Scaled up replica set {rs['metadata']['name']} to {replicas}",
            "deployment-controller",
        )
        self._progress[d["metadata"]["uid"]] = time.monotonic()
        return created

    def _copy_revision(self, d: Obj, new: Obj) -> None:
        revision = (new["metadata"].get("annotations") or {}).get(REVISION_ANNOTATION)
        if revision and self._revision(d) != revision:

            def change(o: Obj) -> None:
                o["metadata"].setdefault("annotations", {})[REVISION_ANNOTATION] = revision

            self.store.mutate(
                DEPLOYMENT, d["metadata"]["namespace"], d["metadata"]["name"], change
            )

    def _scale_rs(self, d: Obj, rs: Obj, replicas: int) -> None:
        old = int(rs["spec"].get("replicas", 0))
        if old == replicas:
            return
        min_ready = d["spec"].get("minReadySeconds", 0)

        def change(o: Obj) -> None:
            o["spec"]["replicas"] = replicas
            o["spec"]["minReadySeconds"] = min_ready
            annotations = o["metadata"].setdefault("annotations", {})
            annotations["deployment.kubernetes.io/desired-replicas"] = str(
                d["spec"].get("replicas", 1)
            )

        self.store.mutate(REPLICASET, rs["metadata"]["namespace"], rs["metadata"]["name"], change)
        rs["spec"]["replicas"] = replicas
        verb = "up" if replicas > old else "down"
        self.events.record(
            d,
            "Normal",
            "ScalingReplicaSet",
            f"Scaled {verb} replica set {rs['metadata']['name']} from {old} to {replicas}",
            "deployment-controller",
        )
        self._progress[d["metadata"]["uid"]] = time.monotonic()

    def _recreate(self, d: Obj, new: Obj, olds: list[Obj], replicas: int) -> None:
        for rs in olds:
            self._scale_rs(d, rs, 0)
        old_uids = {r["metadata"]["uid"] for r in olds}
        pods_left = [
            p
            for p in self.store.snapshot(POD, d["metadata"]["namespace"])[0]
            if any(
                ref.get("uid") in old_uids for ref in p["metadata"].get("ownerReferences") or []
            )
        ]
        if not pods_left:
            self._scale_rs(d, new, replicas)

    def _rolling(self, d: Obj, new: Obj, olds: list[Obj], replicas: int, rolling: Obj) -> None:
        active_olds = [r for r in olds if r["spec"].get("replicas", 0) > 0]
        if not active_olds:
            self._scale_rs(d, new, replicas)
            return
        surge = resolve_int_or_percent(rolling.get("maxSurge", "25%"), replicas, True)
        unavailable = resolve_int_or_percent(rolling.get("maxUnavailable", "25%"), replicas, False)
        if surge == 0 and unavailable == 0:
            unavailable = 1
        # reconcileNewReplicaSet
        all_rs = [new, *olds]
        current = sum(int(r["spec"].get("replicas", 0)) for r in all_rs)
        new_replicas = int(new["spec"].get("replicas", 0))
        if new_replicas > replicas:
            self._scale_rs(d, new, replicas)
        elif current < replicas + surge:
            grow = min(replicas + surge - current, replicas - new_replicas)
            if grow > 0:
                self._scale_rs(d, new, new_replicas + grow)
        # reconcileOldReplicaSets
        all_count = sum(int(r["spec"].get("replicas", 0)) for r in all_rs)
        min_available = replicas - unavailable
        new_unavailable = int(new["spec"].get("replicas", 0)) - int(
            new.get("status", {}).get("availableReplicas", 0)
        )
        budget = all_count - min_available - new_unavailable
        if budget <= 0:
            return
        for rs in active_olds:  # unhealthy old pods go first
            if budget <= 0:
                break
            size = int(rs["spec"].get("replicas", 0))
            unhealthy = size - int(rs.get("status", {}).get("availableReplicas", 0))
            cut = min(budget, max(0, unhealthy))
            if cut:
                self._scale_rs(d, rs, size - cut)
                budget -= cut
        available = sum(int(r.get("status", {}).get("availableReplicas", 0)) for r in all_rs)
        room = min(budget, available - min_available)
        for rs in active_olds:
            if room <= 0:
                break
            size = int(rs["spec"].get("replicas", 0))
            cut = min(size, room)
            if cut:
                self._scale_rs(d, rs, size - cut)
                room -= cut

    def _clean_history(self, d: Obj, olds: list[Obj]) -> None:
        limit = int(d["spec"].get("revisionHistoryLimit", 10))
        idle = [
            r
            for r in olds
            if r["spec"].get("replicas", 0) == 0 and r.get("status", {}).get("replicas", 0) == 0
        ]
        for rs in idle[: max(0, len(idle) - limit)]:
            self.store.remove(REPLICASET, rs["metadata"]["namespace"], rs["metadata"]["name"])

    def _deployment_status(self, d: Obj) -> None:
        if d["metadata"].get("deletionTimestamp"):
            return
        spec = d["spec"]
        rss = self._owned(REPLICASET, d)
        digest = template_hash(spec["template"])
        new = next((r for r in rss if r["metadata"]["labels"].get(HASH_LABEL) == digest), None)
        replicas = int(spec.get("replicas", 1))

        def total(field: str, of: list[Obj]) -> int:
            return sum(int(r.get("status", {}).get(field, 0)) for r in of)

        status_replicas = total("replicas", rss)
        updated = total("replicas", [new]) if new else 0
        ready = total("readyReplicas", rss)
        available = total("availableReplicas", rss)
        rolling = (spec.get("strategy") or {}).get("rollingUpdate") or {}
        max_unavailable = resolve_int_or_percent(
            rolling.get("maxUnavailable", "25%"), replicas, False
        )
        if (spec.get("strategy") or {}).get("type") == "Recreate":
            max_unavailable = replicas
        old = d.get("status") or {}
        stamp = now_rfc3339()
        conditions = {c["type"]: c for c in old.get("conditions") or []}

        def put(kind: str, status: str, reason: str, message: str) -> None:
            before = conditions.get(kind)
            if before and (before["status"], before["reason"], before["message"]) == (
                status,
                reason,
                message,
            ):
                return
            transition = stamp
            if before and before["status"] == status:
                transition = before["lastTransitionTime"]
            conditions[kind] = {
                "type": kind,
                "status": status,
                "reason": reason,
                "message": message,
                "lastUpdateTime": stamp,
                "lastTransitionTime": transition,
            }

        if available >= replicas - max_unavailable:
            put(
                "Available",
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.",
            )
        else:
            put(
                "Available",
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.",
            )
        name = d["metadata"]["name"]
        new_name = new["metadata"]["name"] if new else name
        complete = (
            new is not None
            and updated == replicas
            and status_replicas == replicas
            and available == replicas
        )
        uid = d["metadata"]["uid"]
        deadline = float(spec.get("progressDeadlineSeconds", 600))
        last = self._progress.setdefault(uid, time.monotonic())
        since_s = (time.monotonic() - last) * self.clock.time_scale
        if complete:
            put(
                "Progressing",
                "True",
                "NewReplicaSetAvailable",
                f'ReplicaSet "{new_name}" has successfully progressed.',
            )
        elif since_s > deadline:
            put(
                "Progressing",
                "False",
                "ProgressDeadlineExceeded",
                f'ReplicaSet "{new_name}" has timed out progressing.',
            )
        else:
            put(
                "Progressing",
                "True",
                "ReplicaSetUpdated",
                f'ReplicaSet "{new_name}" is progressing.',
            )
        status: Obj = {
            "observedGeneration": d["metadata"].get("generation", 1),
            "replicas": status_replicas,
            "updatedReplicas": updated,
            "readyReplicas": ready,
            "availableReplicas": available,
            "conditions": [conditions[k] for k in ("Available", "Progressing")],
        }
        if replicas - available > 0:
            status["unavailableReplicas"] = replicas - available
        status = {k: v for k, v in status.items() if v != 0 or k == "observedGeneration"}
        if status != old:
            if _counts(status) != _counts(old):
                self._progress[uid] = time.monotonic()

            def change(o: Obj) -> None:
                o["status"] = status

            self.store.mutate(DEPLOYMENT, d["metadata"]["namespace"], name, change)

    # --- replica sets -------------------------------------------------------------------

    def _sync_replicaset(self, rs: Obj) -> None:
        if rs["metadata"].get("deletionTimestamp"):
            return
        pods = self._owned(POD, rs)
        active = [p for p in pods if is_active(p)]
        want = int(rs["spec"].get("replicas", 1))
        if len(active) < want:
            for _ in range(want - len(active)):
                self._create_pod(rs, REPLICASET, self._pod_name(rs["metadata"]["name"]))
        elif len(active) > want:
            for pod in sorted(active, key=_deletion_rank)[: len(active) - want]:
                self.delete(POD, pod, None, "Background")

    def _pod_name(self, base: str) -> str:
        suffix = "".join(self._rng.choice(SAFE_ALPHABET) for _ in range(5))
        return f"{base}-{suffix}"

    def _create_pod(
        self, owner: Obj, owner_rt: ResourceType, name: str, labels: dict[str, str] | None = None
    ) -> Obj | None:
        template = json.loads(json.dumps(owner["spec"]["template"]))
        meta = template.get("metadata") or {}
        pod: Obj = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "namespace": owner["metadata"]["namespace"],
                "labels": {**(meta.get("labels") or {}), **(labels or {})},
                "annotations": dict(meta.get("annotations") or {}),
                "ownerReferences": [controller_ref(owner, owner_rt)],
            },
            "spec": template.get("spec") or {},
        }
        if owner_rt is STATEFULSET:
            pod["spec"].setdefault("hostname", name)
            if owner["spec"].get("serviceName"):
                pod["spec"].setdefault("subdomain", owner["spec"]["serviceName"])
        admission.default(POD, pod)
        try:
            created = self.store.create(POD, pod)
        except ApiError as exc:
            self.events.record(
                owner,
                "Warning",
                "FailedCreate",
                f"Error creating: {exc.message}",
                f"{owner_rt.singular}-controller",
            )
            return None
        self.events.record(
            owner,
            "Normal",
            "SuccessfulCreate",
            f"Created pod: {name}",
            f"{owner_rt.singular}-controller",
        )
        return created

    def _replicaset_status(self, rs: Obj) -> None:
        if rs["metadata"].get("deletionTimestamp"):
            return
        pods = [p for p in self._owned(POD, rs) if is_active(p)]
        min_ready = float(rs["spec"].get("minReadySeconds", 0))
        labels = (rs["spec"]["template"].get("metadata") or {}).get("labels") or {}
        status: Obj = {
            "replicas": len(pods),
            "fullyLabeledReplicas": sum(
                1
                for p in pods
                if all(p["metadata"].get("labels", {}).get(k) == v for k, v in labels.items())
            ),
            "readyReplicas": sum(1 for p in pods if pod_ready(p)),
            "availableReplicas": sum(1 for p in pods if self._available(p, min_ready)),
            "observedGeneration": rs["metadata"].get("generation", 1),
        }
        status = {
            k: v for k, v in status.items() if v != 0 or k in ("replicas", "observedGeneration")
        }
        if status != rs.get("status"):

            def change(o: Obj) -> None:
                o["status"] = status

            self.store.mutate(
                REPLICASET, rs["metadata"]["namespace"], rs["metadata"]["name"], change
            )

    def _available(self, pod: Obj, min_ready_s: float) -> bool:
        if not pod_ready(pod):
            return False
        if min_ready_s <= 0:
            return True
        # In lab time: the condition's timestamp has only one-second resolution.
        since = self.kubelet.ready_since_s(pod["metadata"]["uid"])
        if since is None:
            return False
        if self.clock.now_s() - since >= min_ready_s:
            return True
        self._due.append(since + min_ready_s)  # a pass then, to count it available
        return False

    # --- stateful sets ------------------------------------------------------------------

    def _sync_statefulset(self, s: Obj) -> None:
        if s["metadata"].get("deletionTimestamp"):
            return
        name = s["metadata"]["name"]
        want = int(s["spec"].get("replicas", 1))
        revision = f"{name}-{template_hash(s['spec']['template'])}"
        pods = {p["metadata"]["name"]: p for p in self._owned(POD, s)}
        parallel = s["spec"].get("podManagementPolicy") == "Parallel"
        for ordinal in range(want):
            pod_name = f"{name}-{ordinal}"
            pod = pods.get(pod_name)
            if pod is None:
                labels = {
                    "controller-revision-hash": revision,
                    "statefulset.kubernetes.io/pod-name": pod_name,
                    "apps.kubernetes.io/pod-index": str(ordinal),
                }
                self._create_pod(s, STATEFULSET, pod_name, labels)
                if not parallel:
                    return
            elif not parallel and not (pod_ready(pod) and is_active(pod)):
                return
        # Scale down from the highest ordinal, one at a time.
        extra = sorted(
            (p for n, p in pods.items() if _ordinal(n, name) >= want),
            key=lambda p: -_ordinal(p["metadata"]["name"], name),
        )
        for pod in extra:
            if is_active(pod):
                self.delete(POD, pod, None, "Background")
            if not parallel:
                return
        # Rolling update: replace the highest-ordinal pod of an old revision, once all
        # pods are Ready.
        strategy = s["spec"].get("updateStrategy") or {}
        if strategy.get("type", "RollingUpdate") != "RollingUpdate":
            return
        partition = int((strategy.get("rollingUpdate") or {}).get("partition", 0))
        current = [pods.get(f"{name}-{i}") for i in range(want)]
        if not all(p is not None and pod_ready(p) and is_active(p) for p in current):
            return
        for ordinal in range(want - 1, partition - 1, -1):
            pod = current[ordinal]
            assert pod is not None
            if pod["metadata"]["labels"].get("controller-revision-hash") != revision:
                self.delete(POD, pod, None, "Background")
                return

    def _statefulset_status(self, s: Obj) -> None:
        if s["metadata"].get("deletionTimestamp"):
            return
        name = s["metadata"]["name"]
        revision = f"{name}-{template_hash(s['spec']['template'])}"
        pods = [p for p in self._owned(POD, s) if is_active(p)]
        updated = [
            p for p in pods if p["metadata"]["labels"].get("controller-revision-hash") == revision
        ]
        old = s.get("status") or {}
        current_revision = old.get("currentRevision", revision)
        if len(updated) == len(pods) == int(s["spec"].get("replicas", 1)):
            current_revision = revision
        status: Obj = {
            "observedGeneration": s["metadata"].get("generation", 1),
            "replicas": len(pods),
            "readyReplicas": sum(1 for p in pods if pod_ready(p)),
            "availableReplicas": sum(1 for p in pods if pod_ready(p)),
            "currentReplicas": len(pods)
            if current_revision == revision
            else len(pods) - len(updated),
            "updatedReplicas": len(updated),
            "currentRevision": current_revision,
            "updateRevision": revision,
            "collisionCount": 0,
        }
        if status != old:

            def change(o: Obj) -> None:
                o["status"] = status

            self.store.mutate(STATEFULSET, s["metadata"]["namespace"], name, change)

    # --- scheduling ---------------------------------------------------------------------

    def _schedule(self) -> None:
        pods = self.store.snapshot(POD)[0]
        nodes = self.store.snapshot(NODE)[0]
        bound = [p for p in pods if holds_resources(p)]
        waiting = sorted(
            (
                p
                for p in pods
                if not p["spec"].get("nodeName") and not p["metadata"].get("deletionTimestamp")
            ),
            key=lambda p: int(p["metadata"]["resourceVersion"]),
        )
        for pod in waiting:
            placement = place(pod, nodes, bound)
            meta = pod["metadata"]
            uid = meta["uid"]
            if placement.node is None:
                if self._unschedulable.get(uid) != placement.message:
                    self._unschedulable[uid] = placement.message
                    self._mark_unschedulable(pod, placement.message)
                continue
            self._unschedulable.pop(uid, None)

            def bind(o: Obj, node: str = placement.node) -> None:
                o["spec"]["nodeName"] = node
                conditions = [
                    c for c in o["status"].get("conditions") or [] if c["type"] != "PodScheduled"
                ]
                conditions.append(
                    {
                        "type": "PodScheduled",
                        "status": "True",
                        "lastProbeTime": None,
                        "lastTransitionTime": now_rfc3339(),
                    }
                )
                o["status"]["conditions"] = conditions

            bound_pod = self.store.mutate(POD, meta["namespace"], meta["name"], bind)
            if bound_pod is not None:
                bound.append(bound_pod)
                self.events.record(
                    pod,
                    "Normal",
                    "Scheduled",
                    f"Successfully assigned {meta['namespace']}/{meta['name']} to "
                    f"{placement.node}",
                    "default-scheduler",
                )

    def _mark_unschedulable(self, pod: Obj, message: str) -> None:
        meta = pod["metadata"]

        def change(o: Obj) -> None:
            o["status"]["phase"] = "Pending"
            o["status"]["conditions"] = [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": message,
                    "lastProbeTime": None,
                    "lastTransitionTime": now_rfc3339(),
                }
            ]

        self.store.mutate(POD, meta["namespace"], meta["name"], change)
        self.events.record(pod, "Warning", "FailedScheduling", message, "default-scheduler")

    # --- endpoints ----------------------------------------------------------------------

    def _endpoints(self, svc: Obj) -> None:
        """The endpoints controller: a selector's Ready pods as addresses, the others as
        not-ready addresses, with the service's ports resolved against container ports."""
        selector = (svc.get("spec") or {}).get("selector")
        meta = svc["metadata"]
        if not selector or meta.get("deletionTimestamp"):
            return
        ns = meta["namespace"]
        pods = [
            p
            for p in self.store.snapshot(POD, ns)[0]
            if is_active(p)
            and p["spec"].get("nodeName")
            and all((p["metadata"].get("labels") or {}).get(k) == v for k, v in selector.items())
        ]
        subset: Obj = {}
        for ready in (True, False):
            addresses = [
                {
                    "ip": (p.get("status") or {}).get("podIP") or "127.0.0.1",
                    "nodeName": p["spec"]["nodeName"],
                    "targetRef": {
                        "kind": "Pod",
                        "namespace": ns,
                        "name": p["metadata"]["name"],
                        "uid": p["metadata"]["uid"],
                    },
                }
                for p in pods
                if pod_ready(p) == ready
            ]
            if addresses:
                subset["addresses" if ready else "notReadyAddresses"] = addresses
        if subset:
            subset["ports"] = [
                {
                    k: v
                    for k, v in (
                        ("name", port.get("name")),
                        ("port", _target_port(port, pods)),
                        ("protocol", port.get("protocol", "TCP")),
                    )
                    if v is not None
                }
                for port in svc["spec"].get("ports") or []
            ]
        subsets = [subset] if subset else []
        current = self.store.find(ENDPOINTS, ns, meta["name"])
        if current is None:
            body: Obj = {
                "apiVersion": "v1",
                "kind": "Endpoints",
                "metadata": {
                    "name": meta["name"],
                    "namespace": ns,
                    "labels": dict(meta.get("labels") or {}),
                    "annotations": {MANAGED_ANNOTATION: "endpoints-controller"},
                },
                "subsets": subsets,
            }
            self.store.create(ENDPOINTS, body)
        elif current.get("subsets") != subsets:

            def change(o: Obj) -> None:
                o["subsets"] = subsets

            self.store.mutate(ENDPOINTS, ns, meta["name"], change)

    def _orphaned_endpoints(self, services: list[Obj]) -> None:
        names = {(s["metadata"]["namespace"], s["metadata"]["name"]) for s in services}
        for ep in self.store.snapshot(ENDPOINTS)[0]:
            meta = ep["metadata"]
            managed = (meta.get("annotations") or {}).get(MANAGED_ANNOTATION)
            if managed and (meta["namespace"], meta["name"]) not in names:
                self.store.remove(ENDPOINTS, meta["namespace"], meta["name"])

    # --- disruption budgets -------------------------------------------------------------

    def _pdb_status(self, pdb: Obj) -> None:
        ns = pdb["metadata"]["namespace"]
        selector = pdb["spec"].get("selector")
        pods = [
            p
            for p in self.store.snapshot(POD, ns)[0]
            if is_active(p) and selector_matches(selector, p["metadata"].get("labels") or {})
        ]
        expected = len(pods)
        healthy = sum(1 for p in pods if pod_ready(p))
        spec = pdb["spec"]
        if "minAvailable" in spec:
            desired = resolve_int_or_percent(spec["minAvailable"], expected, True)
        elif "maxUnavailable" in spec:
            desired = expected - resolve_int_or_percent(spec["maxUnavailable"], expected, True)
        else:
            desired = expected
        allowed = max(0, healthy - desired)
        status: Obj = {
            "observedGeneration": pdb["metadata"].get("generation", 1),
            "currentHealthy": healthy,
            "desiredHealthy": desired,
            "expectedPods": expected,
            "disruptionsAllowed": allowed,
            "conditions": [
                {
                    "type": "DisruptionAllowed",
                    "status": "True" if allowed > 0 else "False",
                    "reason": "SufficientPods" if allowed > 0 else "InsufficientPods",
                    "message": "",
                    "observedGeneration": pdb["metadata"].get("generation", 1),
                    "lastTransitionTime": (pdb.get("status") or {})
                    .get("conditions", [{}])[0]
                    .get("lastTransitionTime", now_rfc3339()),
                }
            ],
        }
        if status != pdb.get("status"):

            def change(o: Obj) -> None:
                o["status"] = status

            self.store.mutate(PDB, ns, pdb["metadata"]["name"], change)


def _counts(status: Obj) -> tuple[int, ...]:
    return tuple(
        int(status.get(k, 0))
        for k in ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas")
    )


def _target_port(port: Obj, pods: list[Obj]) -> int | None:
    """A service port's targetPort as a number: a named one resolves on the pods."""
    target = port.get("targetPort", port.get("port"))
    if isinstance(target, int):
        return target
    for pod in pods:
        for c in pod["spec"].get("containers") or []:
            for p in c.get("ports") or []:
                if p.get("name") == target:
                    return int(p["containerPort"])
    return None


def _ordinal(pod_name: str, set_name: str) -> int:
    tail = pod_name[len(set_name) + 1 :]
    return int(tail) if tail.isdigit() else -1


def _deletion_rank(pod: Obj) -> tuple[int, int, int, int]:
    """The replica set controller deletes unscheduled, then pending, then not-ready pods
    first, and among equals the newest."""
    scheduled = 1 if pod["spec"].get("nodeName") else 0
    phase = {"Pending": 0, "Unknown": 1, "Running": 2}.get(pod.get("status", {}).get("phase"), 0)
    ready = 1 if pod_ready(pod) else 0
    return (scheduled, phase, ready, -int(pod["metadata"]["resourceVersion"]))


__all__ = ["Controller", "selector_text"]
