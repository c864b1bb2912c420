"""What the runtime checks observe and do on a cluster, on the official kubernetes client.

`KubeView` watches one workload (a Deployment or StatefulSet) of the CNF: its pods,
their readiness and restarts, its rollouts.  It works on an ``ApiClient`` (the cluster
driver's, or one made from a kubeconfig), so the same code runs against a real
cluster and the lab's API server.  Times are in the cluster's time base: wall seconds
times `time_scale` (a lab runs faster than wall time), sampled by polling every
`poll_s` of that time base.  Its failures are the cluster driver's `ClusterError`.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from kubernetes import client as k8s
from kubernetes import watch as k8s_watch  # untyped: used through Any
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from bench.cluster import ClusterError

log = logging.getLogger(__name__)

Obj = dict[str, Any]
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"  # what `kubectl rollout restart` sets
REVISION = "deployment.kubernetes.io/revision"


class KubeView:
    def __init__(
        self,
        api_client: Any,
        namespace: str,
        kind: str,
        name: str,
        *,
        time_scale: float = 1.0,
        poll_s: float = 0.5,
    ) -> None:
        if kind not in ("Deployment", "StatefulSet"):
            raise ClusterError(f"workload kind {kind} is not supported (Deployment, StatefulSet)")
        self.api_client = api_client
        self.core = k8s.CoreV1Api(api_client)
        self.apps = k8s.AppsV1Api(api_client)
        self.namespace = namespace
        self.kind = kind
        self.name = name
        self.time_scale = time_scale
        self.poll_s = poll_s

    # --- time -------------------------------------------------------------------------

    def now_s(self) -> float:
        return time.monotonic() * self.time_scale

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds / self.time_scale)

    def wait_for(self, what: str, condition: Callable[[], bool], timeout_s: float) -> float:
        """Poll `condition` until true; return the time it took (cluster time base)."""
        start = self.now_s()
        while True:
            if condition():
                return self.now_s() - start
            if self.now_s() - start > timeout_s:
                raise ClusterError(
                    f"{self.kind} {self.namespace}/{self.name}: {what} not reached within "
                    f"{timeout_s:g} s"
                )
            self.sleep(self.poll_s)

    # --- reading ----------------------------------------------------------------------

    def _call(self, what: str, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        try:
            return fn(*args, **kw)
        except ApiException as exc:
            reason = exc.reason or ""
            raise ClusterError(f"{what}: {exc.status} {reason}".strip()) from exc
        except HTTPError as exc:
            raise ClusterError(f"{what}: {exc}") from exc

    def _plain(self, obj: Any) -> Obj:
        return dict(self.api_client.sanitize_for_serialization(obj))

    def workload(self) -> Obj:
        read = (
            self.apps.read_namespaced_deployment
            if self.kind == "Deployment"
            else self.apps.read_namespaced_stateful_set
        )
        return self._plain(self._call(f"read {self.name}", read, self.name, self.namespace))

    def selector(self, workload: Obj | None = None) -> str:
        labels = ((workload or self.workload())["spec"]["selector"] or {}).get("matchLabels")
        if not labels:
            raise ClusterError(f"{self.name}: only matchLabels selectors are supported")
        return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))

    def pods(self, selector: str | None = None) -> list[Obj]:
        found = self._call(
            "list pods",
            self.core.list_namespaced_pod,
            self.namespace,
            label_selector=selector or self.selector(),
        )
        return [self._plain(p) for p in found.items]

    def live_pods(self) -> list[Obj]:
        """Pods that are not being deleted."""
        return [p for p in self.pods() if not p["metadata"].get("deletionTimestamp")]

    def ready_pods(self) -> list[Obj]:
        return [p for p in self.live_pods() if pod_ready(p)]

    def restarts(self) -> dict[str, int]:
        """Restart count per ``pod/container`` of the workload's pods."""
        out = {}
        for pod in self.pods():
            for cs in (pod.get("status") or {}).get("containerStatuses") or ():
                out[f"{pod['metadata']['name']}/{cs['name']}"] = int(cs.get("restartCount", 0))
        return out

    def logs(self, pod: str, container: str | None, tail_lines: int = 50) -> str:
        return str(
            self._call(
                f"logs of {pod}",
                self.core.read_namespaced_pod_log,
                pod,
                self.namespace,
                container=container,
                tail_lines=tail_lines,
            )
        )

    def rolled_out(self) -> bool:
        """``kubectl rollout status``'s test: observed, updated, available, no old pods."""
        w = self.workload()
        spec, status, meta = w["spec"], w.get("status") or {}, w["metadata"]
        wanted = int(spec.get("replicas", 1))
        if int(status.get("observedGeneration", 0)) < int(meta.get("generation", 0)):
            return False
        if self.kind == "StatefulSet":
            return (
                int(status.get("readyReplicas", 0)) == wanted
                and int(status.get("updatedReplicas", 0)) == wanted
                and status.get("currentRevision") == status.get("updateRevision")
            )
        return (
            int(status.get("updatedReplicas", 0)) == wanted
            and int(status.get("replicas", 0)) == wanted
            and int(status.get("availableReplicas", 0)) == wanted
            and len(self.live_pods()) == wanted
        )

    def settled(self) -> bool:
        """Rolled out, and every terminating pod gone: a pod keeps its share of the
        traffic (and may drop it) until its process exits, after the API marked it."""
        if not self.rolled_out():
            return False
        return not any(p["metadata"].get("deletionTimestamp") for p in self.pods())

    # --- acting -----------------------------------------------------------------------

    def spec_replicas(self) -> int:
        return int(self.workload()["spec"].get("replicas", 1))

    def scale(self, replicas: int) -> None:
        """Through the scale subresource, as ``kubectl scale`` does."""
        patch = (
            self.apps.patch_namespaced_deployment_scale
            if self.kind == "Deployment"
            else self.apps.patch_namespaced_stateful_set_scale
        )
        body = {"spec": {"replicas": replicas}}
        self._call(f"scale {self.name} to {replicas}", patch, self.name, self.namespace, body)

    def scale_and_wait(self, replicas: int, timeout_s: float) -> float:
        self.scale(replicas)
        return self.wait_for(f"{replicas} ready replicas", self.rolled_out, timeout_s)

    def delete_pod(self, pod: str) -> None:
        self._call(f"delete pod {pod}", self.core.delete_namespaced_pod, pod, self.namespace)

    def patch_template_annotation(self, key: str, value: str) -> None:
        body = {"spec": {"template": {"metadata": {"annotations": {key: value}}}}}
        patch = (
            self.apps.patch_namespaced_deployment
            if self.kind == "Deployment"
            else self.apps.patch_namespaced_stateful_set
        )
        self._call(f"patch {self.name}", patch, self.name, self.namespace, body)

    def restart_rollout(self) -> str:
        """A rolling update to a new revision of the same pods (``kubectl rollout restart``)."""
        stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        self.patch_template_annotation(RESTARTED_AT, stamp)
        return stamp

    def revisions(self) -> list[tuple[int, Obj]]:
        """The Deployment's ReplicaSets by revision, oldest first."""
        if self.kind != "Deployment":
            raise ClusterError("rollback of a StatefulSet is not supported yet")
        uid = self.workload()["metadata"]["uid"]
        found = self._call(
            "list replicasets",
            self.apps.list_namespaced_replica_set,
            self.namespace,
            label_selector=self.selector(),
        )
        out = []
        for rs in map(self._plain, found.items):
            owners = rs["metadata"].get("ownerReferences") or ()
            if any(o.get("uid") == uid for o in owners):
                revision = int((rs["metadata"].get("annotations") or {}).get(REVISION, 0))
                out.append((revision, rs))
        return sorted(out, key=lambda item: item[0])

    def rollback(self) -> int:
        """Back to the previous revision (``kubectl rollout undo``); returns its number."""
        revisions = self.revisions()
        if len(revisions) < 2:
            raise ClusterError(f"{self.name}: no previous revision to roll back to")
        revision, previous = revisions[-2]
        template = dict(previous["spec"]["template"])
        labels = dict(template["metadata"].get("labels") or {})
        labels.pop("pod-template-hash", None)
        template["metadata"] = {**template["metadata"], "labels": labels}
        body = [{"op": "replace", "path": "/spec/template", "value": template}]
        self._call(
            f"roll back {self.name}",
            self.apps.patch_namespaced_deployment,
            self.name,
            self.namespace,
            body,
        )
        return revision

    def template_annotations(self) -> Mapping[str, str]:
        meta = self.workload()["spec"]["template"].get("metadata") or {}
        return dict(meta.get("annotations") or {})


class PodWatch:
    """The workload's pods as a watch sees them: every change, not only polled states.

    A rollout on a fast cluster (or a lab) can pass through a moment with no ready
    replica between two polls; the watch sees it.  `fewest_ready` is the smallest
    number of ready, not-terminating pods seen since `start`.
    """

    def __init__(self, kube: KubeView) -> None:
        self.kube = kube
        watch_type: Any = k8s_watch.Watch
        self._watch: Any = watch_type()
        self._pods: dict[str, bool] = {}
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._thread: threading.Thread | None = None
        self.fewest_ready = 0
        self.error: str | None = None

    def __enter__(self) -> PodWatch:
        kube = self.kube
        selector = kube.selector()
        listed = kube._call(
            "list pods", kube.core.list_namespaced_pod, kube.namespace, label_selector=selector
        )
        for pod in listed.items:
            self._pods[pod.metadata.name] = _serving(kube._plain(pod))
        self.fewest_ready = self.ready
        version = listed.metadata.resource_version
        self._thread = threading.Thread(
            target=self._run, args=(selector, version), name="pod-watch", daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._watch.stop()
        if self._thread is not None:
            self._thread.join(timeout=5.0)

    @property
    def ready(self) -> int:
        return sum(self._pods.values())

    def ready_names(self) -> set[str]:
        with self._lock:
            return {name for name, ok in self._pods.items() if ok}

    def _run(self, selector: str, version: str) -> None:
        kube = self.kube
        try:
            for event in self._watch.stream(
                kube.core.list_namespaced_pod,
                kube.namespace,
                label_selector=selector,
                resource_version=version,
            ):
                pod = kube._plain(event["object"])
                name = pod["metadata"]["name"]
                with self._changed:
                    if event["type"] == "DELETED":
                        self._pods.pop(name, None)
                    else:
                        self._pods[name] = _serving(pod)
                    self.fewest_ready = min(self.fewest_ready, self.ready)
                    self._changed.notify_all()
        except (ApiException, HTTPError, ValueError) as exc:
            with self._changed:
                self.error = f"watching pods: {exc}"
                self._changed.notify_all()

    def wait(self, what: str, condition: Callable[[], bool], timeout_s: float) -> float:
        """Wait for `condition`, evaluated at every pod change and every poll."""
        kube = self.kube
        start = kube.now_s()
        while True:
            if condition():
                return kube.now_s() - start
            if self.error is not None:
                raise ClusterError(self.error)
            if kube.now_s() - start > timeout_s:
                raise ClusterError(
                    f"{kube.kind} {kube.namespace}/{kube.name}: {what} not reached within "
                    f"{timeout_s:g} s"
                )
            with self._changed:
                self._changed.wait(kube.poll_s / kube.time_scale)


def _serving(pod: Obj) -> bool:
    return not pod["metadata"].get("deletionTimestamp") and pod_ready(pod)


def pod_ready(pod: Obj) -> bool:
    for cond in (pod.get("status") or {}).get("conditions") or ():
        if cond.get("type") == "Ready":
            return bool(cond.get("status") == "True")
    return False
