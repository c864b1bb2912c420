"""The cluster driver: CNF workloads through the Kubernetes API, on the official client.

One implementation serves real clusters and the embedded lab alike; only the kubeconfig
changes.  `Cluster` connects with a kubeconfig and context (or in-cluster config),
installs a CNF from a Helm chart (rendered with the real ``helm template``, or installed
with ``helm upgrade --install`` when the profile says ``install: helm``) or from a
manifest directory, scales its workload through the scale subresource, measures time
to ready with a watch, reports pods that stay Pending and why, deletes a pod and
measures recovery, rolls out a new image, lists pods and nodes, reads logs, and
restores the original replica count.

Durations are measured on the wall clock from the request to the watch event that
shows the condition, then multiplied by `Cluster.time_scale`: 1 on a real cluster; the
lab's time scale on the embedded lab, whose clock runs that much faster, so figures are
always in the testbed's seconds.

Errors are `ClusterError` subclasses (a `BenchError`): `ClusterUnreachable`,
`ClusterAuthError`, `WorkloadNotFound`, `WorkloadNotReady`, `RolloutFailed`,
`ChartError` (an `InputError`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import urllib3
import yaml
from kubernetes import client, config, dynamic, stream, watch
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from kubernetes.dynamic.exceptions import DynamicApiError, ResourceNotFoundError
from kubernetes.utils import parse_quantity

from bench.errors import BenchError, InputError
from bench.profiles import ClusterSpec, CnfProfile

if TYPE_CHECKING:
    from bench.labctl import LabEndpoints

log = logging.getLogger(__name__)

MIN_WALL_WAIT_S = 30.0

Obj = dict[str, Any]

WORKLOAD_KINDS = ("Deployment", "StatefulSet")
RELEASE_ANNOTATION = "cnfbench.io/release"
NETWORK_STATUS_ANNOTATION = "k8s.v1.cni.cncf.io/network-status"
METRICS_URL_ANNOTATION = "lab.cnfbench.io/metrics-url"
# The client's watch and dynamic modules are untyped; everything from them is Any here.
Watch: Any = watch.Watch
DynamicClient: Any = dynamic.DynamicClient
_stream: Any = stream.stream
_parse_quantity: Any = parse_quantity
_load_incluster: Any = config.load_incluster_config
_load_kubeconfig: Any = config.load_kube_config
WATCH_SLICE_S = 5  # server-side timeout of one watch request (wall seconds)
HELM_TIMEOUT_S = 300.0

# The order in which helm installs kinds (pkg/releaseutil/kind_sorter.go); others last.
INSTALL_ORDER = (
    "Namespace", "NetworkPolicy", "ResourceQuota", "LimitRange", "PodSecurityPolicy",
    "PodDisruptionBudget", "ServiceAccount", "Secret", "SecretList", "ConfigMap",
    "StorageClass", "PersistentVolume", "PersistentVolumeClaim", "CustomResourceDefinition",
    "ClusterRole", "ClusterRoleList", "ClusterRoleBinding", "ClusterRoleBindingList", "Role",
    "RoleList", "RoleBinding", "RoleBindingList", "NetworkAttachmentDefinition", "Service",
    "DaemonSet", "Pod", "ReplicationController", "ReplicaSet", "Deployment",
    "HorizontalPodAutoscaler", "StatefulSet", "Job", "CronJob", "IngressClass", "Ingress",
    "APIService",
)  # fmt: skip


# --- errors ----------------------------------------------------------------------------


class ClusterError(BenchError):
    """The cluster refused or failed a request; the message says which and why."""


class ClusterUnreachable(ClusterError):
    """Nothing answers at the API server's address."""


class ClusterAuthError(ClusterError):
    """The API server rejected the credentials (401) or the permission (403)."""


class WorkloadNotFound(ClusterError):
    """The CNF's Deployment or StatefulSet does not exist."""


class WorkloadNotReady(ClusterError):
    """The workload did not reach the wanted ready count in time; `result` says how far."""

    def __init__(self, message: str, result: ScaleResult | RecoveryResult | None = None) -> None:
        super().__init__(message)
        self.result = result


class RolloutFailed(ClusterError):
    """A rollout exceeded its progress deadline or the driver's timeout."""


class ChartError(InputError):
    """A chart or manifest directory could not be rendered or read."""


# --- results ---------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkloadRef:
    namespace: str
    kind: str  # Deployment or StatefulSet
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"

    @classmethod
    def of(cls, cnf: CnfProfile) -> WorkloadRef:
        return cls(cnf.namespace, cnf.workload.kind, cnf.workload.name)


@dataclass(frozen=True)
class ObjectRef:
    api_version: str
    kind: str
    namespace: str | None
    name: str


@dataclass(frozen=True)
class ClusterVersion:
    git_version: str
    major: int
    minor: int
    platform: str

    @property
    def short(self) -> str:
        return f"{self.major}.{self.minor}"


@dataclass(frozen=True)
class NetworkAttachment:
    """One entry of a pod's Multus network-status annotation."""

    name: str
    interface: str
    mac: str | None
    pci_address: str | None
    ips: tuple[str, ...]
    default: bool


@dataclass(frozen=True)
class PodInfo:
    namespace: str
    name: str
    node: str | None
    phase: str
    ready: bool
    terminating: bool
    restarts: int
    images: tuple[str, ...]
    pod_ip: str | None
    reason: str | None  # why it is not running: Unschedulable, ContainerCreating, ...
    message: str | None
    networks: tuple[NetworkAttachment, ...]
    metrics_url: str | None
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)

    @property
    def vf_macs(self) -> tuple[str, ...]:
        """MACs of the SR-IOV VFs attached to the pod, in attachment order."""
        return tuple(n.mac for n in self.networks if n.pci_address and n.mac)


@dataclass(frozen=True)
class PendingPod:
    name: str
    reason: str
    message: str


@dataclass(frozen=True)
class ExecResult:
    exit_code: int
    stdout: str
    stderr: str


@dataclass(frozen=True)
class EventInfo:
    type: str  # Normal or Warning
    reason: str
    kind: str  # of the object it is about
    name: str
    message: str
    count: int


@dataclass(frozen=True)
class NodeInfo:
    name: str
    ready: bool
    unschedulable: bool
    capacity: dict[str, str]
    allocatable: dict[str, str]
    labels: dict[str, str]
    kubelet_version: str
    # What the pods bound to the node request, in base units (cores, bytes, devices).
    requested: dict[str, float] = field(default_factory=dict)

    def free(self, resource: str) -> float:
        """Allocatable minus requested, e.g. the SR-IOV VFs still to be had."""
        total = float(_parse_quantity(self.allocatable.get(resource, "0")))
        return total - self.requested.get(resource, 0.0)


@dataclass(frozen=True)
class WorkloadStatus:
    ref: WorkloadRef
    replicas: int  # spec.replicas
    ready_replicas: int
    updated_replicas: int
    available_replicas: int
    current_replicas: int  # status.replicas: pods not terminating
    generation: int
    observed_generation: int
    images: dict[str, str]  # container name -> image
    selector: str


@dataclass(frozen=True)
class ScaleResult:
    """A scale (or install, or restore) and how long the workload took to be ready.

    `time_to_ready_s` is from the scale request to the watch event showing all wanted
    replicas Ready (in testbed seconds), None when that did not happen; `pending` lists
    the pods still Pending at the end with the scheduler's reason.
    """

    ref: WorkloadRef
    replicas_before: int
    replicas: int
    ready_replicas: int
    time_to_ready_s: float | None
    pending: tuple[PendingPod, ...] = ()

    @property
    def ready(self) -> bool:
        return self.time_to_ready_s is not None


@dataclass(frozen=True)
class RecoveryResult:
    """A deleted pod and its replacement: recovery is all replicas Ready again."""

    ref: WorkloadRef
    deleted_pod: str
    replacement_pods: tuple[str, ...]
    time_to_gone_s: float | None  # until the deleted pod object disappeared
    time_to_recovered_s: float | None  # until as many Ready pods as replicas again
    ready_replicas: int


@dataclass(frozen=True)
class RolloutResult:
    ref: WorkloadRef
    container: str
    old_image: str
    new_image: str
    duration_s: float
    revision: str | None


@dataclass(frozen=True)
class Installation:
    """A CNF installed into a namespace, with what is needed to uninstall it."""

    release: str
    namespace: str
    method: str  # "template", "helm" or "manifests"
    workload: WorkloadRef
    objects: tuple[ObjectRef, ...]
    images: tuple[str, ...]
    rendered_sha256: str
    chart: str | None = None  # name-version of the chart, when from a chart
    created_namespace: bool = False


# --- the driver ------------------------------------------------------------------------


class Cluster:
    """A Kubernetes cluster (or the lab's API server) through the official client."""

    def __init__(
        self,
        api_client: client.ApiClient,
        *,
        time_scale: float = 1.0,
        kubeconfig: str | None = None,
        context: str | None = None,
        helm: str = "helm",
    ) -> None:
        if not time_scale > 0:
            raise InputError(f"time scale must be positive, got {time_scale}")
        self.api = api_client
        self.time_scale = float(time_scale)
        self.kubeconfig = kubeconfig
        self.context = context
        self.helm = helm
        # The typed APIs' models make every field Optional; read them as Any.
        self.core: Any = client.CoreV1Api(api_client)
        self.apps: Any = client.AppsV1Api(api_client)
        self._dynamic: Any = None
        self._originals: dict[WorkloadRef, int] = {}

    # --- connecting -----------------------------------------------------------------------

    @classmethod
    def connect(
        cls,
        kubeconfig: str | Path | None = None,
        context: str | None = None,
        *,
        in_cluster: bool = False,
        time_scale: float = 1.0,
        helm: str = "helm",
    ) -> Cluster:
        """Connect and check that the API answers and accepts the credentials."""
        configuration = client.Configuration()
        try:
            if in_cluster:
                _load_incluster(client_configuration=configuration)
            else:
                _load_kubeconfig(
                    config_file=str(kubeconfig) if kubeconfig else None,
                    context=context,
                    client_configuration=configuration,
                    persist_config=False,
                )
        except ConfigException as exc:
            where = (
                "in-cluster config"
                if in_cluster
                else f"kubeconfig {kubeconfig or '~/.kube/config'}"
            )
            raise ClusterError(f"{where}: {exc}") from exc
        except OSError as exc:
            raise ClusterError(f"kubeconfig {kubeconfig}: {exc.strerror or exc}") from exc
        configuration.retries = 1
        api_client = client.ApiClient(configuration)
        cluster = cls(
            api_client,
            time_scale=time_scale,
            kubeconfig=str(kubeconfig) if kubeconfig else None,
            context=context,
            helm=helm,
        )
        cluster.version()
        with cluster._errors("discover the core API"):
            client.CoreApi(api_client).get_api_versions()
        return cluster

    @classmethod
    def from_spec(
        cls, spec: ClusterSpec, *, base_dir: Path | None = None, time_scale: float = 1.0
    ) -> Cluster:
        """From a testbed profile's ``cluster`` section: no kubeconfig means in-cluster
        config when running in a pod, else the default kubeconfig."""
        kubeconfig: str | Path | None = spec.kubeconfig
        if kubeconfig is not None and base_dir is not None:
            kubeconfig = (base_dir / Path(kubeconfig).expanduser()).resolve()
        in_cluster = kubeconfig is None and _in_cluster()
        return cls.connect(kubeconfig, spec.context, in_cluster=in_cluster, time_scale=time_scale)

    @classmethod
    def from_lab(cls, endpoints: LabEndpoints) -> Cluster:
        """The embedded lab's cluster, from the endpoints its state.json publishes; its
        durations come out in the lab's seconds (its time scale)."""
        kube = endpoints.services.get("kubernetes") or endpoints.raw.get("kubernetes")
        if not kube or not kube.get("kubeconfig"):
            raise ClusterError(
                f"the lab in {endpoints.state_dir} publishes no Kubernetes API; start it with "
                "a cnfbench that has the lab's Kubernetes server"
            )
        return cls.connect(
            kube["kubeconfig"], kube.get("context"), time_scale=endpoints.time_scale
        )

    def close(self) -> None:
        api: Any = self.api
        api.close()

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _wall_s(self, timeout_s: float) -> float:
        """A timeout in testbed seconds as wall seconds to wait.  A scaled-down wait is
        never shorter than `MIN_WALL_WAIT_S`: on a busy machine the API server's own
        latency, not the lab's clock, would otherwise decide whether a wait times out."""
        return max(timeout_s / self.time_scale, MIN_WALL_WAIT_S)

    @property
    def server(self) -> str:
        return str(self.api.configuration.host)

    def version(self) -> ClusterVersion:
        with self._errors("read the server version"):
            info = client.VersionApi(self.api).get_code()
        return ClusterVersion(
            info.git_version,
            int("".join(ch for ch in info.major if ch.isdigit()) or 0),
            int("".join(ch for ch in info.minor if ch.isdigit()) or 0),
            info.platform,
        )

    # --- errors ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def _errors(self, doing: str, ref: WorkloadRef | None = None) -> Iterator[None]:
        """Turn client exceptions into ClusterError subclasses with a useful message."""
        try:
            yield
        except (ApiException, DynamicApiError) as exc:
            raise self._api_error(exc, doing, ref) from exc
        except urllib3.exceptions.HTTPError as exc:
            raise ClusterUnreachable(
                f"cannot reach the Kubernetes API at {self.server} to {doing}: "
                f"{_root_cause(exc)}; check the kubeconfig's server address and that the "
                "cluster (or the lab) is up"
            ) from exc

    def _api_error(
        self, exc: ApiException | DynamicApiError, doing: str, ref: WorkloadRef | None
    ) -> ClusterError:
        status = int(getattr(exc, "status", 0) or 0)
        message = _status_message(exc)
        context = f" (context {self.context})" if self.context else ""
        if status == 401:
            return ClusterAuthError(
                f"the Kubernetes API at {self.server} rejected the credentials{context} "
                f"(401 Unauthorized) while trying to {doing}; renew the token or certificate "
                "in the kubeconfig"
            )
        if status == 403 and "cannot" in message:
            return ClusterAuthError(f"not allowed to {doing}: {message} (403 Forbidden)")
        if status == 404 and ref is not None:
            return WorkloadNotFound(
                f"{ref} not found; install the CNF first or check the profile's workload "
                "and namespace"
            )
        return ClusterError(f"could not {doing}: {message} ({status or 'no status'})")

    # --- workloads ------------------------------------------------------------------------

    def _read(self, ref: WorkloadRef) -> Any:
        with self._errors(f"read {ref}", ref):
            if ref.kind == "Deployment":
                return self.apps.read_namespaced_deployment(ref.name, ref.namespace)
            if ref.kind == "StatefulSet":
                return self.apps.read_namespaced_stateful_set(ref.name, ref.namespace)
        raise InputError(f"workload kind {ref.kind!r} is not one of {', '.join(WORKLOAD_KINDS)}")

    def workload(self, ref: WorkloadRef) -> WorkloadStatus:
        return _status_of(ref, self._read(ref))

    def _scale_subresource(self, ref: WorkloadRef, replicas: int) -> None:
        body = {"spec": {"replicas": replicas}}
        with self._errors(f"scale {ref} to {replicas}", ref):
            if ref.kind == "Deployment":
                self.apps.patch_namespaced_deployment_scale(ref.name, ref.namespace, body)
            else:
                self.apps.patch_namespaced_stateful_set_scale(ref.name, ref.namespace, body)

    def scale(
        self,
        ref: WorkloadRef,
        replicas: int,
        *,
        timeout_s: float = 300.0,
        pending_grace_s: float = 30.0,
        require_ready: bool = True,
    ) -> ScaleResult:
        """Scale through the scale subresource and wait for all replicas to be Ready.

        Pods that stay Unschedulable for `pending_grace_s` (testbed seconds) end the wait
        early.  With `require_ready`, a workload that is not ready raises
        `WorkloadNotReady` naming the Pending pods and why; otherwise the result says so.
        """
        if replicas < 0:
            raise InputError(f"replicas must not be negative, got {replicas}")
        before = self.workload(ref)
        self._originals.setdefault(ref, before.replicas)
        started = time.monotonic()
        self._scale_subresource(ref, replicas)
        log.info("scaling %s from %d to %d replicas", ref, before.replicas, replicas)
        return self._wait_scaled(
            ref,
            before.replicas,
            replicas=replicas,
            started=started,
            timeout_s=timeout_s,
            pending_grace_s=pending_grace_s,
            require_ready=require_ready,
        )

    def wait_ready(
        self,
        ref: WorkloadRef,
        *,
        timeout_s: float = 300.0,
        pending_grace_s: float = 30.0,
        require_ready: bool = True,
    ) -> ScaleResult:
        """Wait until the workload's current spec.replicas are all Ready."""
        status = self.workload(ref)
        return self._wait_scaled(
            ref,
            status.replicas,
            replicas=status.replicas,
            started=time.monotonic(),
            timeout_s=timeout_s,
            pending_grace_s=pending_grace_s,
            require_ready=require_ready,
        )

    def _wait_scaled(
        self,
        ref: WorkloadRef,
        before: int,
        *,
        replicas: int,
        started: float,
        timeout_s: float,
        pending_grace_s: float,
        require_ready: bool,
    ) -> ScaleResult:
        pending_since: list[float] = []

        def settled(obj: Any) -> bool:
            return _scaled(_status_of(ref, obj), replicas)

        def give_up() -> bool:
            # Called when the watch has been quiet: is the rest stuck in Pending?
            if not self.pending_pods(ref):
                pending_since.clear()
                return False
            if not pending_since:
                pending_since.append(time.monotonic())
            return (time.monotonic() - pending_since[0]) * self.time_scale >= pending_grace_s

        final, done_at = self._watch_workload(
            ref, settled, started + self._wall_s(timeout_s), give_up
        )
        status = _status_of(ref, final)
        elapsed = None if done_at is None else (done_at - started) * self.time_scale
        result = ScaleResult(
            ref,
            before,
            replicas,
            status.ready_replicas,
            elapsed,
            () if elapsed is not None else tuple(self.pending_pods(ref)),
        )
        if elapsed is not None:
            log.info("%s: %d/%d ready after %.2f s", ref, status.ready_replicas, replicas, elapsed)
        elif require_ready:
            raise WorkloadNotReady(_not_ready_message(result), result)
        return result

    def _watch_workload(
        self,
        ref: WorkloadRef,
        done: Callable[[Any], bool],
        deadline: float,
        give_up: Callable[[], bool] | None = None,
    ) -> tuple[Any, float | None]:
        """Watch one workload until `done(obj)`; (last object, monotonic time or None)."""
        list_fn = (
            self.apps.list_namespaced_deployment
            if ref.kind == "Deployment"
            else self.apps.list_namespaced_stateful_set
        )
        obj = self._read(ref)
        if done(obj):
            return obj, time.monotonic()
        rv = obj.metadata.resource_version
        while time.monotonic() < deadline:
            remaining = max(1, min(WATCH_SLICE_S, int(deadline - time.monotonic()) + 1))
            events = 0
            stream = Watch()
            try:
                with self._errors(f"watch {ref}", ref):
                    for event in stream.stream(
                        list_fn,
                        ref.namespace,
                        field_selector=f"metadata.name={ref.name}",
                        resource_version=rv,
                        timeout_seconds=remaining,
                        _request_timeout=remaining + 10,
                    ):
                        events += 1
                        kind, current = event["type"], event["object"]
                        if kind == "DELETED":
                            raise WorkloadNotFound(f"{ref} was deleted while waiting for it")
                        if kind not in ("ADDED", "MODIFIED"):
                            continue
                        obj, rv = current, current.metadata.resource_version
                        if done(obj):
                            return obj, time.monotonic()
                        if time.monotonic() >= deadline:
                            break
            except ApiException as exc:
                if exc.status != 410:
                    raise self._api_error(exc, f"watch {ref}", ref) from exc
                obj = self._read(ref)  # our version expired: start again from now
                rv = obj.metadata.resource_version
                if done(obj):
                    return obj, time.monotonic()
            finally:
                stream.stop()
            if give_up is not None and give_up():
                break
        return obj, None

    # --- pods and nodes -------------------------------------------------------------------

    def pods(self, ref: WorkloadRef | str, selector: str | None = None) -> list[PodInfo]:
        """Pods of a workload (by its selector), or of a namespace and label selector."""
        if isinstance(ref, WorkloadRef):
            namespace, selector = ref.namespace, self.workload(ref).selector
        else:
            namespace = ref
        with self._errors(f"list pods in {namespace}"):
            items = self.core.list_namespaced_pod(namespace, label_selector=selector or "").items
        return sorted((_pod_info(p) for p in items), key=lambda p: p.name)

    def pending_pods(self, ref: WorkloadRef) -> list[PendingPod]:
        """Pods of the workload that are Pending, with the scheduler's or kubelet's reason."""
        out = []
        for pod in self.pods(ref):
            if pod.phase == "Pending" and not pod.terminating:
                out.append(PendingPod(pod.name, pod.reason or "Pending", pod.message or ""))
        return out

    def nodes(self) -> list[NodeInfo]:
        with self._errors("list nodes"):
            items = self.core.list_node().items
            pods = self.core.list_pod_for_all_namespaces().items
        requested: dict[str, dict[str, float]] = {}
        for pod in pods:
            phase = pod.status.phase if pod.status else None
            if not pod.spec.node_name or phase in ("Succeeded", "Failed"):
                continue
            usage = requested.setdefault(pod.spec.node_name, {})
            for c in pod.spec.containers:
                for name, qty in ((c.resources.requests if c.resources else None) or {}).items():
                    usage[name] = usage.get(name, 0.0) + float(_parse_quantity(qty))
        out = []
        node: Any
        for node in items:
            conditions = node.status.conditions or []
            ready = any(c.type == "Ready" and c.status == "True" for c in conditions)
            out.append(
                NodeInfo(
                    node.metadata.name,
                    ready,
                    bool(node.spec.unschedulable),
                    dict(node.status.capacity or {}),
                    dict(node.status.allocatable or {}),
                    dict(node.metadata.labels or {}),
                    node.status.node_info.kubelet_version if node.status.node_info else "",
                    requested.get(node.metadata.name, {}),
                )
            )
        return out

    def events(self, namespace: str, *, warnings_only: bool = False) -> list[EventInfo]:
        """The namespace's events, oldest first."""
        selector = "type=Warning" if warnings_only else ""
        with self._errors(f"list events in {namespace}"):
            items = self.core.list_namespaced_event(namespace, field_selector=selector).items
        out = [
            EventInfo(
                e.type or "",
                e.reason or "",
                e.involved_object.kind or "",
                e.involved_object.name or "",
                e.message or "",
                int(e.count or 1),
            )
            for e in items
        ]
        return out

    def logs(
        self,
        namespace: str,
        pod: str,
        *,
        container: str | None = None,
        tail_lines: int | None = None,
        previous: bool = False,
    ) -> str:
        kwargs: dict[str, Any] = {"previous": previous}
        if container:
            kwargs["container"] = container
        if tail_lines is not None:
            kwargs["tail_lines"] = tail_lines
        with self._errors(f"read the logs of pod {namespace}/{pod}"):
            text = self.core.read_namespaced_pod_log(pod, namespace, **kwargs)
        return str(text)

    def exec_in_pod(
        self,
        namespace: str,
        pod: str,
        container: str,
        command: list[str],
        *,
        timeout_s: float = 30.0,
    ) -> ExecResult:
        """Run a command in a container (pods/exec over WebSocket) and wait for it."""
        with self._errors(f"exec {command[0] if command else ''} in pod {namespace}/{pod}"):
            ws = _stream(
                self.core.connect_get_namespaced_pod_exec,
                pod,
                namespace,
                command=command,
                container=container,
                stderr=True,
                stdin=False,
                stdout=True,
                tty=False,
                _preload_content=False,
            )
            try:
                ws.run_forever(timeout=timeout_s)
                out, err = ws.read_stdout(), ws.read_stderr()
                code = ws.returncode
            finally:
                ws.close()
        if code is None:
            raise ClusterError(f"exec in pod {namespace}/{pod} did not finish in {timeout_s:g} s")
        return ExecResult(int(code), str(out), str(err))

    def resources(self, namespace: str) -> list[ObjectRef]:
        """Every object in the namespace, of the kinds the API serves and lists."""
        out: list[ObjectRef] = []
        with self._errors(f"discover the API resources for {namespace}"):
            kinds = [
                r
                for r in self.dynamic.resources.search()
                if getattr(r, "namespaced", False)
                and "list" in (getattr(r, "verbs", None) or [])
                and "/" not in str(getattr(r, "name", "/"))
                and r.kind not in ("Event", "Binding")
                and not r.kind.endswith("List")
            ]
        for resource in kinds:
            with self._errors(f"list {resource.name} in {namespace}"):
                items = resource.get(namespace=namespace).items
            for item in items:
                out.append(
                    ObjectRef(resource.group_version, resource.kind, namespace, item.metadata.name)
                )
        return sorted(set(out), key=lambda o: (o.kind, o.name))

    @property
    def dynamic(self) -> Any:
        if self._dynamic is None:
            with self._errors("discover the API"):
                self._dynamic = DynamicClient(self.api)
        return self._dynamic

    # --- disruption -----------------------------------------------------------------------

    def delete_pod(
        self,
        ref: WorkloadRef,
        pod: str | None = None,
        *,
        grace_period_s: int | None = None,
        timeout_s: float = 300.0,
        require_recovered: bool = True,
    ) -> RecoveryResult:
        """Delete one pod of the workload (the first Ready one unless named) and watch
        until as many pods as replicas are Ready again."""
        status = self.workload(ref)
        before = {p.name: p for p in self.pods(ref)}
        victim = pod or next((p.name for p in before.values() if p.ready), None)
        if victim is None or victim not in before:
            raise WorkloadNotFound(f"no pod {pod or '(ready)'} of {ref} to delete")
        body = client.V1DeleteOptions(grace_period_seconds=grace_period_s)
        started = time.monotonic()
        with self._errors(f"delete pod {ref.namespace}/{victim}", ref):
            self.core.delete_namespaced_pod(victim, ref.namespace, body=body)
        log.info("deleted pod %s/%s of %s", ref.namespace, victim, ref)
        deadline = started + self._wall_s(timeout_s)
        gone_at, recovered_at, ready, new = self._watch_recovery(
            ref, status, victim, set(before), deadline
        )

        def since(t: float | None) -> float | None:
            return None if t is None else (t - started) * self.time_scale

        result = RecoveryResult(
            ref, victim, tuple(sorted(new)), since(gone_at), since(recovered_at), ready
        )
        if recovered_at is None and require_recovered:
            raise WorkloadNotReady(
                f"{ref} did not recover within {timeout_s:g} s after pod {victim} was deleted: "
                f"{ready}/{status.replicas} ready",
                result,
            )
        return result

    def _watch_recovery(
        self,
        ref: WorkloadRef,
        status: WorkloadStatus,
        victim: str,
        known: set[str],
        deadline: float,
    ) -> tuple[float | None, float | None, int, set[str]]:
        with self._errors(f"list pods of {ref}", ref):
            listing = self.core.list_namespaced_pod(ref.namespace, label_selector=status.selector)
        pods = {p.metadata.name: _pod_info(p) for p in listing.items}
        rv = listing.metadata.resource_version
        gone_at: float | None = None if victim in pods else time.monotonic()
        recovered_at: float | None = None

        def ready_count() -> int:
            return sum(1 for p in pods.values() if p.ready and not p.terminating)

        while time.monotonic() < deadline and recovered_at is None:
            remaining = max(1, min(WATCH_SLICE_S, int(deadline - time.monotonic()) + 1))
            stream = Watch()
            try:
                with self._errors(f"watch pods of {ref}", ref):
                    for event in stream.stream(
                        self.core.list_namespaced_pod,
                        ref.namespace,
                        label_selector=status.selector,
                        resource_version=rv,
                        timeout_seconds=remaining,
                        _request_timeout=remaining + 10,
                    ):
                        obj = event["object"]
                        rv = obj.metadata.resource_version
                        name = obj.metadata.name
                        if event["type"] == "DELETED":
                            pods.pop(name, None)
                            if name == victim and gone_at is None:
                                gone_at = time.monotonic()
                        elif event["type"] in ("ADDED", "MODIFIED"):
                            pods[name] = _pod_info(obj)
                        if ready_count() >= status.replicas and (
                            victim not in pods or pods[victim].terminating
                        ):
                            recovered_at = time.monotonic()
                            break
            except ApiException as exc:
                if exc.status != 410:
                    raise self._api_error(exc, f"watch pods of {ref}", ref) from exc
                return self._watch_recovery(ref, status, victim, known, deadline)
            finally:
                stream.stop()
        return gone_at, recovered_at, ready_count(), set(pods) - known

    def evict_pod(self, namespace: str, pod: str, *, grace_period_s: int | None = None) -> bool:
        """Ask to evict a pod (what a node drain does); False when a disruption budget
        forbids it now (429), True when the pod is being deleted."""
        body = {
            "apiVersion": "policy/v1",
            "kind": "Eviction",
            "metadata": {"name": pod, "namespace": namespace},
            "deleteOptions": {"gracePeriodSeconds": grace_period_s}
            if grace_period_s is not None
            else {},
        }
        try:
            self.core.create_namespaced_pod_eviction(pod, namespace, body)
        except ApiException as exc:
            if exc.status == 429:
                log.info("eviction of %s/%s refused: %s", namespace, pod, _status_message(exc))
                return False
            raise self._api_error(exc, f"evict pod {namespace}/{pod}", None) from exc
        except urllib3.exceptions.HTTPError as exc:
            raise ClusterUnreachable(
                f"cannot reach the Kubernetes API at {self.server} to evict a pod: "
                f"{_root_cause(exc)}"
            ) from exc
        return True

    def rollout(
        self,
        ref: WorkloadRef,
        image: str,
        *,
        container: str | None = None,
        timeout_s: float = 600.0,
    ) -> RolloutResult:
        """Set a container's image and wait until the rollout is complete, with the
        criteria of ``kubectl rollout status``."""
        status = self.workload(ref)
        name = container or next(iter(status.images))
        if name not in status.images:
            raise InputError(f"{ref} has no container {name!r}; it has {', '.join(status.images)}")
        old = status.images[name]
        patch = {"spec": {"template": {"spec": {"containers": [{"name": name, "image": image}]}}}}
        started = time.monotonic()
        with self._errors(f"set the image of {ref} container {name}", ref):
            if ref.kind == "Deployment":
                self.apps.patch_namespaced_deployment(ref.name, ref.namespace, patch)
            else:
                self.apps.patch_namespaced_stateful_set(ref.name, ref.namespace, patch)
        log.info("rolling %s container %s from %s to %s", ref, name, old, image)
        deadline = started + self._wall_s(timeout_s)
        final, done_at = self._watch_workload(ref, lambda o: _rolled_out(ref, o), deadline)
        if done_at is None:
            raise RolloutFailed(
                f"the rollout of {image} to {ref} did not complete within {timeout_s:g} s: "
                f"{_rollout_progress(ref, final)}"
            )
        revision = (final.metadata.annotations or {}).get("deployment.kubernetes.io/revision")
        return RolloutResult(
            ref, name, old, image, (done_at - started) * self.time_scale, revision
        )

    # --- replica bookkeeping ----------------------------------------------------------------

    def remember_replicas(self, ref: WorkloadRef) -> int:
        """Record the workload's replica count now, to be restored by `restore_replicas`."""
        replicas = self.workload(ref).replicas
        self._originals.setdefault(ref, replicas)
        return self._originals[ref]

    def restore_replicas(self, *, timeout_s: float = 300.0) -> list[ScaleResult]:
        """Scale every workload this driver scaled back to its original replica count."""
        results = []
        for ref, replicas in list(self._originals.items()):
            try:
                if self.workload(ref).replicas != replicas:
                    results.append(
                        self.scale(ref, replicas, timeout_s=timeout_s, require_ready=False)
                    )
            except WorkloadNotFound:
                log.info("%s is gone; nothing to restore", ref)
            self._originals.pop(ref, None)
        return results

    @contextlib.contextmanager
    def preserving_replicas(self, ref: WorkloadRef, *, timeout_s: float = 300.0) -> Iterator[int]:
        """Within the block, scale freely; on the way out (also on an exception or an
        interrupt) the original replica count comes back."""
        original = self.remember_replicas(ref)
        try:
            yield original
        finally:
            self.restore_replicas(timeout_s=timeout_s)

    # --- installing -----------------------------------------------------------------------

    def render(self, cnf: CnfProfile, base_dir: Path, *, release: str | None = None) -> str:
        """The CNF's manifests as one YAML text: ``helm template`` output or the files."""
        if cnf.chart is not None:
            return self._helm_template(cnf, base_dir, release or _release(cnf))
        assert cnf.manifests is not None
        return _read_manifest_dir((base_dir / cnf.manifests).resolve())

    def install(
        self,
        cnf: CnfProfile,
        base_dir: Path,
        *,
        release: str | None = None,
        wait: bool = True,
        timeout_s: float = 300.0,
    ) -> tuple[Installation, ScaleResult | None]:
        """Install the CNF into its namespace; with `wait`, wait for the workload."""
        release = release or _release(cnf)
        ref = WorkloadRef.of(cnf)
        created_ns = self._ensure_namespace(cnf.namespace)
        started = time.monotonic()
        if cnf.chart is not None and cnf.install == "helm":
            text = self._helm_install(cnf, base_dir, release)
            method = "helm"
        else:
            text = self.render(cnf, base_dir, release=release)
            method = "template" if cnf.chart is not None else "manifests"
        where = f"chart {cnf.chart.path or cnf.chart.name}" if cnf.chart else f"{cnf.manifests}"
        objects = _parse_manifests(text, where, cnf.namespace)
        _check_workload(objects, ref, where)
        if method != "helm":
            for obj in sorted(objects, key=_install_rank):
                self._apply(obj, release)
        installation = Installation(
            release=release,
            namespace=cnf.namespace,
            method=method,
            workload=ref,
            objects=tuple(_ref_of(o) for o in objects),
            images=tuple(sorted(_images(objects))),
            rendered_sha256=hashlib.sha256(text.encode()).hexdigest(),
            chart=_chart_id(cnf, base_dir),
            created_namespace=created_ns,
        )
        log.info(
            "installed %s (%s, %d objects) into %s", release, method, len(objects), cnf.namespace
        )
        if not wait:
            return installation, None
        status = self.workload(ref)
        result = self._wait_scaled(
            ref,
            0,
            replicas=status.replicas,
            started=started,
            timeout_s=timeout_s,
            pending_grace_s=30.0,
            require_ready=True,
        )
        return installation, result

    def uninstall(self, installation: Installation, *, timeout_s: float = 120.0) -> None:
        """Delete what was installed and wait until the workload's pods are gone."""
        ref = installation.workload
        selector = None
        with contextlib.suppress(WorkloadNotFound):
            selector = self.workload(ref).selector
        if installation.method == "helm":
            self._run_helm(
                ["uninstall", installation.release, "--namespace", installation.namespace],
                "uninstall",
            )
        else:
            for obj in sorted(installation.objects, key=_install_rank, reverse=True):
                self._delete_object(obj)
        self._originals.pop(ref, None)
        if selector:
            self._wait_no_pods(ref.namespace, selector, time.monotonic() + self._wall_s(timeout_s))
        if installation.created_namespace:
            with self._errors(f"delete namespace {installation.namespace}"):
                self.core.delete_namespace(installation.namespace)
            self._wait_namespace_gone(
                installation.namespace, time.monotonic() + self._wall_s(timeout_s)
            )
        log.info("uninstalled %s from %s", installation.release, installation.namespace)

    def _ensure_namespace(self, namespace: str, timeout_s: float = 120.0) -> bool:
        """Create the namespace unless it exists; wait out one still being deleted."""
        try:
            with self._errors(f"read namespace {namespace}"):
                current = self.core.read_namespace(namespace)
            if current.metadata.deletion_timestamp is None:
                return False
            log.info("namespace %s is being deleted; waiting for it to go", namespace)
            self._wait_namespace_gone(namespace, time.monotonic() + self._wall_s(timeout_s))
        except ClusterError as exc:
            if "404" not in str(exc):
                raise
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
        with self._errors(f"create namespace {namespace}"):
            self.core.create_namespace(body)
        return True

    def _apply(self, obj: Obj, release: str) -> None:
        """Create the object, or merge-patch it onto the existing one: fields the server
        assigned (a Service's clusterIP) stay, what the manifest says wins."""
        obj = json.loads(json.dumps(obj))
        obj["metadata"].setdefault("annotations", {})[RELEASE_ANNOTATION] = release
        resource = self._resource(obj)
        namespace = obj["metadata"].get("namespace") if resource.namespaced else None
        name = obj["metadata"]["name"]
        what = f"{obj['kind']} {namespace + '/' if namespace else ''}{name}"
        try:
            resource.create(body=obj, namespace=namespace)
            return
        except DynamicApiError as exc:
            if exc.status != 409:
                raise self._api_error(exc, f"create {what}", None) from exc
        with self._errors(f"update {what}"):
            resource.patch(
                body=obj,
                name=name,
                namespace=namespace,
                content_type="application/merge-patch+json",
            )

    def _resource(self, obj: Obj) -> Any:
        try:
            return self.dynamic.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
        except ResourceNotFoundError as exc:
            raise ClusterError(
                f"the cluster does not serve {obj['kind']} ({obj['apiVersion']}); install the "
                "operator or CRD that provides it"
            ) from exc

    def _delete_object(self, ref: ObjectRef) -> None:
        try:
            resource = self.dynamic.resources.get(api_version=ref.api_version, kind=ref.kind)
        except ResourceNotFoundError:
            return
        try:
            resource.delete(
                name=ref.name, namespace=ref.namespace, body={"propagationPolicy": "Background"}
            )
        except DynamicApiError as exc:
            if exc.status != 404:
                raise self._api_error(exc, f"delete {ref.kind} {ref.name}", None) from exc

    def _wait_namespace_gone(self, namespace: str, deadline: float) -> None:
        selector = f"metadata.name={namespace}"
        while time.monotonic() < deadline:
            with self._errors("list namespaces"):
                listing = self.core.list_namespace(field_selector=selector)
            if not listing.items:
                return
            remaining = max(1, min(WATCH_SLICE_S, int(deadline - time.monotonic()) + 1))
            stream = Watch()
            try:
                with self._errors("watch namespaces"):
                    for event in stream.stream(
                        self.core.list_namespace,
                        field_selector=selector,
                        resource_version=listing.metadata.resource_version,
                        timeout_seconds=remaining,
                        _request_timeout=remaining + 10,
                    ):
                        if event["type"] == "DELETED":
                            return
            except ApiException as exc:
                if exc.status != 410:
                    raise self._api_error(exc, "watch namespaces", None) from exc
            finally:
                stream.stop()
        raise ClusterError(f"namespace {namespace} was still being deleted after the timeout")

    def _wait_no_pods(self, namespace: str, selector: str, deadline: float) -> None:
        while time.monotonic() < deadline:
            with self._errors(f"list pods in {namespace}"):
                listing = self.core.list_namespaced_pod(namespace, label_selector=selector)
            if not listing.items:
                return
            remaining = max(1, min(WATCH_SLICE_S, int(deadline - time.monotonic()) + 1))
            left = {p.metadata.name for p in listing.items}
            stream = Watch()
            try:
                with self._errors(f"watch pods in {namespace}"):
                    for event in stream.stream(
                        self.core.list_namespaced_pod,
                        namespace,
                        label_selector=selector,
                        resource_version=listing.metadata.resource_version,
                        timeout_seconds=remaining,
                        _request_timeout=remaining + 10,
                    ):
                        if event["type"] == "DELETED":
                            left.discard(event["object"].metadata.name)
                            if not left:
                                return
            except ApiException as exc:
                if exc.status != 410:
                    raise
            finally:
                stream.stop()
        raise ClusterError(f"pods {selector} in {namespace} were still there after uninstall")

    # --- helm -----------------------------------------------------------------------------

    def _helm_args(self, cnf: CnfProfile, base_dir: Path, values: Path) -> list[str]:
        chart = cnf.chart
        assert chart is not None
        if chart.path is not None:
            source = [str((base_dir / chart.path).resolve())]
        else:
            source = [str(chart.name), "--repo", str(chart.repo), "--version", str(chart.version)]
        return [*source, "--namespace", cnf.namespace, "--values", str(values)]

    def _helm_template(self, cnf: CnfProfile, base_dir: Path, release: str) -> str:
        with _values_file(cnf) as values:
            args = [
                "template",
                release,
                *self._helm_args(cnf, base_dir, values),
                "--kube-version",
                self._kube_version(),
            ]
            return self._run_helm(args, "render the chart")

    def _helm_install(self, cnf: CnfProfile, base_dir: Path, release: str) -> str:
        with _values_file(cnf) as values:
            self._run_helm(
                [
                    "upgrade",
                    "--install",
                    release,
                    *self._helm_args(cnf, base_dir, values),
                    *self._helm_cluster(),
                ],
                "install the chart",
            )
        return self._run_helm(
            ["get", "manifest", release, "--namespace", cnf.namespace, *self._helm_cluster()],
            "read the installed manifest",
        )

    def _helm_cluster(self) -> list[str]:
        args = []
        if self.kubeconfig:
            args += ["--kubeconfig", self.kubeconfig]
        if self.context:
            args += ["--kube-context", self.context]
        return args

    def _kube_version(self) -> str:
        v = self.version()
        return f"v{v.major}.{v.minor}.0"

    def _run_helm(self, args: list[str], doing: str) -> str:
        helm = shutil.which(self.helm)
        if helm is None:
            raise ChartError(f"helm ({self.helm}) is not on PATH; it is needed to {doing}")
        if args[0] in ("uninstall",):
            args = [*args, *self._helm_cluster()]
        try:
            done = subprocess.run(
                [helm, *args],
                capture_output=True,
                text=True,
                timeout=HELM_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise ChartError(f"helm {args[0]} did not finish in {HELM_TIMEOUT_S:g} s") from exc
        if done.returncode != 0:
            lines = done.stderr.strip().splitlines() or [f"exit code {done.returncode}"]
            why = next((line for line in lines if line.startswith("Error:")), lines[-1])
            raise ChartError(f"helm could not {doing}: {why.removeprefix('Error: ')}")
        return done.stdout


# --- helpers ---------------------------------------------------------------------------


def _in_cluster() -> bool:
    return Path("/var/run/secrets/kubernetes.io/serviceaccount/token").is_file()


def _root_cause(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    while isinstance(reason, BaseException) and getattr(reason, "reason", None) is not None:
        reason = reason.reason  # type: ignore[attr-defined]
    text = str(reason or exc)
    if "Connection refused" in text:
        return "connection refused"
    return text.split(": ", 1)[-1] if "object at 0x" in text else text


def _status_message(exc: ApiException | DynamicApiError) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, bytes):
        body = body.decode(errors="replace")
    try:
        data = json.loads(body) if body else {}
    except (TypeError, ValueError):
        data = {}
    if isinstance(data, dict) and data.get("message"):
        return str(data["message"])
    return str(getattr(exc, "reason", "") or exc)


def _status_of(ref: WorkloadRef, obj: Any) -> WorkloadStatus:
    status = obj.status
    spec = obj.spec
    selector = spec.selector
    labels = dict(selector.match_labels or {}) if selector else {}
    terms = [f"{k}={v}" for k, v in sorted(labels.items())]
    for expr in (selector.match_expressions or []) if selector else []:
        values = ",".join(expr.values or [])
        terms.append(
            {
                "In": f"{expr.key} in ({values})",
                "NotIn": f"{expr.key} notin ({values})",
                "Exists": expr.key,
                "DoesNotExist": f"!{expr.key}",
            }[expr.operator]
        )
    return WorkloadStatus(
        ref=ref,
        replicas=int(spec.replicas if spec.replicas is not None else 1),
        ready_replicas=int(status.ready_replicas or 0) if status else 0,
        updated_replicas=int(status.updated_replicas or 0) if status else 0,
        available_replicas=int(status.available_replicas or 0) if status else 0,
        current_replicas=int(status.replicas or 0) if status else 0,
        generation=int(obj.metadata.generation or 0),
        observed_generation=int(status.observed_generation or 0) if status else 0,
        images={c.name: c.image for c in spec.template.spec.containers},
        selector=",".join(terms),
    )


def _scaled(status: WorkloadStatus, replicas: int) -> bool:
    return (
        status.replicas == replicas
        and status.observed_generation >= status.generation
        and status.current_replicas == replicas
        and status.ready_replicas == replicas
    )


def _rolled_out(ref: WorkloadRef, obj: Any) -> bool:
    s = _status_of(ref, obj)
    if s.observed_generation < s.generation:
        return False
    if ref.kind == "StatefulSet":
        status = obj.status
        return (
            s.updated_replicas >= s.replicas
            and s.ready_replicas == s.replicas
            and status.update_revision == status.current_revision
        )
    for c in obj.status.conditions or []:
        if c.type == "Progressing" and c.reason == "ProgressDeadlineExceeded":
            raise RolloutFailed(
                f"the rollout of {ref} exceeded its progress deadline: {c.message}"
            )
    return (
        s.updated_replicas == s.replicas
        and s.current_replicas == s.updated_replicas
        and s.available_replicas == s.updated_replicas
    )


def _rollout_progress(ref: WorkloadRef, obj: Any) -> str:
    s = _status_of(ref, obj)
    return (
        f"{s.updated_replicas} of {s.replicas} updated, {s.available_replicas} available, "
        f"{s.current_replicas} current"
    )


def _not_ready_message(result: ScaleResult) -> str:
    text = (
        f"{result.ref} has {result.ready_replicas}/{result.replicas} replicas ready after "
        f"scaling from {result.replicas_before}"
    )
    if result.pending:
        first = result.pending[0]
        text += (
            f"; {len(result.pending)} pod(s) Pending, e.g. {first.name}: {first.reason}: "
            f"{first.message}"
        )
    return text


def _pod_info(pod: Any) -> PodInfo:
    meta, spec, status = pod.metadata, pod.spec, pod.status
    annotations = dict(meta.annotations or {})
    statuses = (status.container_statuses or []) if status else []
    reason = message = None
    for c in (status.conditions or []) if status else []:
        if c.type == "PodScheduled" and c.status == "False":
            reason, message = c.reason, c.message
    if reason is None:
        for cs in statuses:
            waiting = cs.state.waiting if cs.state else None
            if waiting is not None:
                reason, message = waiting.reason, waiting.message
                break
    ready = (
        any(c.type == "Ready" and c.status == "True" for c in (status.conditions or []) if status)
        if status
        else False
    )
    return PodInfo(
        namespace=meta.namespace,
        name=meta.name,
        node=spec.node_name,
        phase=(status.phase if status else None) or "Pending",
        ready=bool(ready),
        terminating=meta.deletion_timestamp is not None,
        restarts=sum(int(cs.restart_count or 0) for cs in statuses),
        images=tuple(c.image for c in spec.containers),
        pod_ip=status.pod_ip if status else None,
        reason=reason,
        message=message,
        networks=_networks(annotations.get(NETWORK_STATUS_ANNOTATION)),
        metrics_url=_metrics_url(annotations, status.pod_ip if status else None),
        labels=dict(meta.labels or {}),
        annotations=annotations,
    )


def _networks(text: str | None) -> tuple[NetworkAttachment, ...]:
    if not text:
        return ()
    try:
        entries = json.loads(text)
    except ValueError:
        return ()
    out = []
    for e in entries if isinstance(entries, list) else []:
        if not isinstance(e, dict):
            continue
        pci = ((e.get("device-info") or {}).get("pci") or {}).get("pci-address")
        out.append(
            NetworkAttachment(
                str(e.get("name", "")),
                str(e.get("interface", "")),
                e.get("mac"),
                pci,
                tuple(e.get("ips") or ()),
                bool(e.get("default", False)),
            )
        )
    return tuple(out)


def _metrics_url(annotations: dict[str, str], pod_ip: str | None) -> str | None:
    if annotations.get(METRICS_URL_ANNOTATION):
        return annotations[METRICS_URL_ANNOTATION]
    port = annotations.get("prometheus.io/port")
    if port and pod_ip:
        path = annotations.get("prometheus.io/path", "/metrics")
        return f"http://{pod_ip}:{port}{path}"
    return None


def _release(cnf: CnfProfile) -> str:
    if cnf.chart is not None and cnf.chart.release:
        return cnf.chart.release
    return cnf.name


@contextlib.contextmanager
def _values_file(cnf: CnfProfile) -> Iterator[Path]:
    assert cnf.chart is not None
    with tempfile.TemporaryDirectory(prefix="cnfbench-values-") as tmp:
        path = Path(tmp) / "values.yaml"
        path.write_text(yaml.safe_dump(dict(cnf.chart.values)), encoding="utf-8")
        yield path


def _chart_id(cnf: CnfProfile, base_dir: Path) -> str | None:
    chart = cnf.chart
    if chart is None:
        return None
    if chart.path is None:
        return f"{chart.name}-{chart.version}"
    meta_path = (base_dir / chart.path / "Chart.yaml").resolve()
    try:
        meta = yaml.safe_load(meta_path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return None
    return f"{meta.get('name')}-{meta.get('version')}"


def _read_manifest_dir(directory: Path) -> str:
    if not directory.is_dir():
        raise ChartError(f"{directory}: the manifest directory does not exist")
    files = sorted(p for p in directory.rglob("*") if p.suffix in (".yaml", ".yml", ".json"))
    if not files:
        raise ChartError(f"{directory}: no .yaml, .yml or .json files")
    parts = []
    for path in files:
        parts.append(
            f"# Source: {path.relative_to(directory)}\n"
            f"{path.read_text(encoding='utf-8').strip()}\n"
        )
    return "---\n".join(parts)


def _parse_manifests(text: str, where: str, namespace: str) -> list[Obj]:
    try:
        docs = list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        raise ChartError(f"{where}:{line}: not valid YAML: {exc}") from exc
    out = []
    for index, doc in enumerate(docs):
        if doc is None:
            continue
        if doc.get("kind", "").endswith("List") and isinstance(doc.get("items"), list):
            out.extend(doc["items"])
            continue
        for key in ("apiVersion", "kind"):
            if not isinstance(doc, dict) or not doc.get(key):
                raise ChartError(
                    f"{where}: document {index + 1}: {key}: required field is missing"
                )
        if not (doc.get("metadata") or {}).get("name"):
            raise ChartError(
                f"{where}: document {index + 1} ({doc['kind']}): metadata.name: required field "
                "is missing"
            )
        out.append(doc)
    for obj in out:
        if obj["kind"] not in (
            "Namespace",
            "Node",
            "ClusterRole",
            "ClusterRoleBinding",
            "CustomResourceDefinition",
            "StorageClass",
            "PersistentVolume",
        ):
            obj["metadata"].setdefault("namespace", namespace)
    return out


def _check_workload(objects: list[Obj], ref: WorkloadRef, where: str) -> None:
    if not any(o["kind"] == ref.kind and o["metadata"]["name"] == ref.name for o in objects):
        found = (
            ", ".join(
                f"{o['kind']}/{o['metadata']['name']}"
                for o in objects
                if o["kind"] in WORKLOAD_KINDS
            )
            or "none"
        )
        raise ChartError(f"{where}: renders no {ref.kind} named {ref.name!r} (workloads: {found})")


def _install_rank(obj: Obj | ObjectRef) -> tuple[int, str]:
    kind = obj.kind if isinstance(obj, ObjectRef) else obj["kind"]
    name = obj.name if isinstance(obj, ObjectRef) else obj["metadata"]["name"]
    rank = INSTALL_ORDER.index(kind) if kind in INSTALL_ORDER else len(INSTALL_ORDER)
    return rank, name


def _ref_of(obj: Obj) -> ObjectRef:
    meta = obj["metadata"]
    return ObjectRef(obj["apiVersion"], obj["kind"], meta.get("namespace"), meta["name"])


def _images(objects: list[Obj]) -> set[str]:
    out = set()
    for obj in objects:
        spec = obj.get("spec") or {}
        pod_spec = (spec.get("template") or {}).get("spec") if "template" in spec else None
        if obj["kind"] == "Pod":
            pod_spec = spec
        for c in [
            *((pod_spec or {}).get("initContainers") or []),
            *((pod_spec or {}).get("containers") or []),
        ]:
            if c.get("image"):
                out.add(str(c["image"]))
    return out
