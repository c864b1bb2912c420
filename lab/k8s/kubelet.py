"""The lab's kubelet: pod lifecycles on the nodes, in the lab's virtual time.

A bound pod goes through what a kubelet does with it: Multus attaches its networks
(one SR-IOV VF per network from the node's device plugin pool, described in the
``k8s.v1.cni.cncf.io/network-status`` annotation), images are pulled (once per node),
containers start, probes run on their schedule, and the pod turns Ready when its
readiness probe first succeeds after the application finished initialising.  A liveness
or startup probe that keeps failing restarts the container (with kubelet's crash-loop
back-off from the second restart).  A pod being deleted stops being Ready at once, its
process exits after its shutdown time (at most the grace period), and the pod object is
then removed.

Every transition is computed from the times planned when a container starts, so the
status written at any instant is the one a kubelet would report then.  Pods whose
data-plane container names a known CNF model join the data plane when Ready (their
capacity appears after the model's warm-up) and leave it when they stop being Ready;
while their process runs they serve Prometheus metrics on a loopback port.

Lab-only annotations (documented for tests and demos):

- ``lab.cnfbench.io/startup-seconds``: how long the application takes to initialise
  (default `PodTiming.app_init_s`);
- ``lab.cnfbench.io/hang-after-seconds``: the application hangs that long after each
  start (so liveness and readiness probes fail from then on);
- ``lab.cnfbench.io/metrics-url``: written by the lab, the pod's metrics URL.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from lab.k8s.events import Recorder
from lab.k8s.metrics import MetricsEndpoint
from lab.k8s.nodes import ClusterShape, VirtualFunction, node_vfs
from lab.k8s.quantity import parse_quantity
from lab.k8s.resources import by_kind
from lab.k8s.store import Store

log = logging.getLogger(__name__)

Obj = dict[str, Any]

STARTUP_ANNOTATION = "lab.cnfbench.io/startup-seconds"
HANG_ANNOTATION = "lab.cnfbench.io/hang-after-seconds"
METRICS_URL_ANNOTATION = "lab.cnfbench.io/metrics-url"
NETWORKS_ANNOTATION = "k8s.v1.cni.cncf.io/networks"
NETWORK_STATUS_ANNOTATION = "k8s.v1.cni.cncf.io/network-status"
RESOURCE_NAME_ANNOTATION = "k8s.v1.cni.cncf.io/resourceName"
POD_IP = "127.0.0.1"  # every pod's address is loopback: the lab answers nowhere else
BACKOFF_START_S = 10.0
BACKOFF_MAX_S = 300.0
FINAL_LOGS_KEPT = 256  # pods whose last log lines are kept after they are gone


class Clock(Protocol):
    time_scale: float

    def now_s(self) -> float: ...


class ReplicaSink(Protocol):
    """The data plane as the kubelet drives it (`lab.dataplane.DataPlane`)."""

    def add_replica(
        self,
        replica_id: str,
        at_s: float,
        mac: str | None = None,
        model: Any = None,
        other_macs: Sequence[str] = (),
    ) -> None: ...

    def remove_replica(self, replica_id: str, at_s: float) -> None: ...

    def replica_counters(self) -> Mapping[str, Any]: ...


ModelLookup = Callable[[str], Any | None]  # model name -> a model, or None when unknown


@dataclass(frozen=True)
class PodTiming:
    """Virtual seconds the steps of a pod's life take."""

    image_pull_s: float = 4.0
    container_start_s: float = 1.0
    app_init_s: float = 2.0
    shutdown_s: float = 1.0


def model_name_for_image(image: str) -> str:
    """``registry.lab.local/cnfbench/vpp-router:24.02`` -> ``vpp-router``."""
    last = image.rsplit("/", 1)[-1]
    return last.split("@", 1)[0].split(":", 1)[0]


@dataclass
class _Probe:
    initial_s: float
    period_s: float
    failures: int
    successes: int

    @classmethod
    def of(cls, spec: Obj | None) -> _Probe | None:
        if not isinstance(spec, dict):
            return None
        return cls(
            float(spec.get("initialDelaySeconds", 0)),
            max(1.0, float(spec.get("periodSeconds", 10))),
            max(1, int(spec.get("failureThreshold", 3))),
            max(1, int(spec.get("successThreshold", 1))),
        )

    def first_tick_at_or_after(self, start_s: float, t_s: float) -> float:
        """The first probe time ``start + initial + k·period`` that is ≥ `t_s`."""
        base = start_s + self.initial_s
        if t_s <= base:
            return base
        return base + math.ceil((t_s - base) / self.period_s - 1e-9) * self.period_s


@dataclass
class _Run:
    """One incarnation of a container and the times planned for it."""

    started_s: float
    app_ready_s: float
    ready_s: float | None  # readiness probe success; None when it never succeeds
    kill_s: float | None = None  # liveness or startup probe failure kills it
    kill_reason: str = ""
    hang_s: float | None = None
    unready_s: float | None = None
    ended_s: float | None = None
    exit_code: int = 0


@dataclass
class _Container:
    name: str
    image: str
    spec: Obj
    runs: list[_Run] = field(default_factory=list)
    created_s: float = 0.0

    @property
    def restarts(self) -> int:
        return max(0, len(self.runs) - 1)


@dataclass
class _Pod:
    uid: str
    namespace: str
    name: str
    node: str
    bound_s: float
    vfs: list[VirtualFunction]
    networks: list[Obj]
    containers: dict[str, _Container]
    app_init_s: float
    hang_after_s: float | None
    model_name: str | None = None
    model: Any = None
    dataplane_container: str | None = None
    joined: bool = False
    terminating_s: float | None = None
    exit_s: float | None = None
    metrics: MetricsEndpoint | None = None
    last_counters: dict[str, float] = field(default_factory=dict)
    emitted: set[str] = field(default_factory=set)
    extra_logs: list[tuple[float, str, str]] = field(default_factory=list)  # (t, container, line)

    @property
    def replica_id(self) -> str:
        return f"{self.namespace}/{self.name}"


class Kubelet:
    """All nodes' kubelets, driven by the controller loop's passes."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        *,
        shape: ClusterShape,
        timing: PodTiming,
        recorder: Recorder,
        sink: ReplicaSink | None = None,
        models: ModelLookup | None = None,
        wall_epoch_s: float = 0.0,
    ) -> None:
        self._store = store
        self._clock = clock
        self._shape = shape
        self._timing = timing
        self._events = recorder
        self._sink = sink
        self._models = models
        self._epoch = wall_epoch_s
        self._pods: dict[str, _Pod] = {}
        self._images: dict[str, set[str]] = {}  # node -> images present
        self._vfs = {shape.node_name(i): node_vfs(shape, i) for i in range(shape.nodes)}
        self._pod_rt = by_kind("v1", "Pod")
        self._failed_sandboxes: set[str] = set()
        self._final_logs: dict[tuple[str, str, str], list[tuple[str, str]]] = {}
        self._nad_rt = by_kind("k8s.cni.cncf.io/v1", "NetworkAttachmentDefinition")

    # --- time ---------------------------------------------------------------------------

    def stamp(self, t_s: float, micro: bool = False) -> str:
        """The wall-clock RFC 3339 time at which lab time was `t_s`."""
        when = datetime.fromtimestamp(self._epoch + t_s / self._clock.time_scale, UTC)
        if micro:
            return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return when.strftime("%Y-%m-%dT%H:%M:%SZ")

    # --- the pass ------------------------------------------------------------------------

    def sync(self, pods: list[Obj]) -> float | None:
        """Advance every bound pod to now; return the next virtual time anything changes."""
        now = self._clock.now_s()
        seen = set()
        deadlines: list[float] = []
        for pod in pods:
            if not pod["spec"].get("nodeName"):
                continue
            uid = pod["metadata"]["uid"]
            seen.add(uid)
            deadline = self._sync_pod(pod, now)
            if deadline is not None:
                deadlines.append(deadline)
        for uid in set(self._pods) - seen:
            self._forget(self._pods[uid], now)
        future = [d for d in deadlines if d > now]
        return min(future) if future else None

    def _sync_pod(self, pod: Obj, now: float) -> float | None:
        uid = pod["metadata"]["uid"]
        state = self._pods.get(uid)
        if state is None:
            state = self._admit(pod, now)
            if state is None:
                return None
            self._pods[uid] = state
        if pod["metadata"].get("deletionTimestamp") and state.terminating_s is None:
            self._terminate(pod, state, now)
        if state.exit_s is not None and now >= state.exit_s:
            self._finish(pod, state, now)
            return None
        self._advance(pod, state, now)
        self._membership(state, now)
        self._write_status(pod, state, now)
        return self._next_change(state, now)

    # --- admission: networks, VFs, image pulls -------------------------------------------

    def _requested_networks(self, pod: Obj) -> list[Obj]:
        text = (pod["metadata"].get("annotations") or {}).get(NETWORKS_ANNOTATION, "")
        text = text.strip()
        if not text:
            return []
        if text.startswith("["):
            try:
                parsed = json.loads(text)
            except json.JSONDecodeError:
                return [{"name": "<unparsable>"}]
            return [n for n in parsed if isinstance(n, dict)]
        out = []
        for item in text.split(","):
            name, _, iface = item.strip().partition("@")
            ns, _, net = name.rpartition("/")
            entry: Obj = {"name": net}
            if ns:
                entry["namespace"] = ns
            if iface:
                entry["interface"] = iface
            out.append(entry)
        return out

    def _vf_count(self, pod: Obj) -> int:
        total = 0.0
        for c in pod["spec"].get("containers") or []:
            requests = (c.get("resources") or {}).get("requests") or {}
            total += parse_quantity(requests.get(self._shape.sriov_resource, 0))
        return int(total)

    def _free_vfs(self, node: str) -> list[VirtualFunction]:
        used = {vf.pci_address for p in self._pods.values() if p.node == node for vf in p.vfs}
        return [vf for vf in self._vfs.get(node, []) if vf.pci_address not in used]

    def _admit(self, pod: Obj, now: float) -> _Pod | None:
        meta, spec = pod["metadata"], pod["spec"]
        node = spec["nodeName"]
        if meta.get("deletionTimestamp"):
            return None
        networks = self._requested_networks(pod)
        problem = self._missing_network(meta["namespace"], networks)
        if problem:
            key = f"sandbox:{meta['uid']}"
            if key not in self._failed_sandboxes:
                self._failed_sandboxes.add(key)
                self._events.record(pod, "Warning", "FailedCreatePodSandBox", problem, "kubelet")
            return None
        wanted = self._vf_count(pod)
        free = self._free_vfs(node)
        vfs = free[:wanted]
        annotations = meta.get("annotations") or {}
        state = _Pod(
            uid=meta["uid"],
            namespace=meta["namespace"],
            name=meta["name"],
            node=node,
            bound_s=now,
            vfs=vfs,
            networks=networks,
            containers={},
            app_init_s=_float(annotations.get(STARTUP_ANNOTATION), self._timing.app_init_s),
            hang_after_s=_float(annotations.get(HANG_ANNOTATION), None),
        )
        images = self._images.setdefault(node, set())
        for c in spec.get("containers") or []:
            image = str(c.get("image"))
            pull_s = 0.0 if image in images else self._timing.image_pull_s
            if pull_s:
                self._events.record(
                    pod, "Normal", "Pulling", f'Pulling image "{image}"', "kubelet"
                )
            else:
                self._events.record(
                    pod,
                    "Normal",
                    "Pulled",
                    f'Container image "{image}" already present on machine',
                    "kubelet",
                )
            images.add(image)
            container = _Container(c["name"], image, c, created_s=now)
            container.runs.append(self._plan(state, container, now + pull_s))
            state.containers[c["name"]] = container
            model_name = model_name_for_image(image)
            if state.model_name is None and self._models is not None:
                model = self._models(model_name)
                if model is not None:
                    state.model_name, state.model = model_name, model
                    state.dataplane_container = c["name"]
        self._annotate_networks(pod, state)
        return state

    def _missing_network(self, namespace: str, networks: list[Obj]) -> str | None:
        assert self._nad_rt is not None
        for net in networks:
            ns = net.get("namespace", namespace)
            if self._store.find(self._nad_rt, ns, str(net.get("name"))) is None:
                return (
                    'Failed to create pod sandbox: plugin type="multus" name="multus-cni-'
                    f'network" failed (add): Multus: error getting network attachment '
                    f"definition {ns}/{net.get('name')}: "
                    f'network-attachment-definitions.k8s.cni.cncf.io "{net.get("name")}" '
                    "not found"
                )
        return None

    def _annotate_networks(self, pod: Obj, state: _Pod) -> None:
        status: list[Obj] = [
            {
                "name": "lab-pod-network",
                "interface": "eth0",
                "ips": [POD_IP],
                "mac": "0a:58:7f:00:00:01",
                "default": True,
                "dns": {},
            }
        ]
        vfs = iter(state.vfs)
        for i, net in enumerate(state.networks, start=1):
            entry: Obj = {
                "name": f"{net.get('namespace', state.namespace)}/{net.get('name')}",
                "interface": net.get("interface", f"net{i}"),
                "dns": {},
            }
            vf = next(vfs, None)
            if vf is not None:
                entry["mac"] = vf.mac
                entry["device-info"] = {
                    "type": "pci",
                    "version": "1.1.0",
                    "pci": {"pci-address": vf.pci_address},
                }
            status.append(entry)
        assert self._pod_rt is not None

        def change(obj: Obj) -> None:
            annotations = obj["metadata"].setdefault("annotations", {})
            annotations[NETWORK_STATUS_ANNOTATION] = json.dumps(status, indent=4)

        self._store.mutate(self._pod_rt, state.namespace, state.name, change)

    # --- one container incarnation's schedule --------------------------------------------

    def _plan(self, state: _Pod, container: _Container, begin_s: float) -> _Run:
        """Plan a container start at `begin_s`: probe successes, failures and kills."""
        started = begin_s + self._timing.container_start_s
        app_ready = started + state.app_init_s
        hang = started + state.hang_after_s if state.hang_after_s is not None else None
        spec = container.spec
        startup = _Probe.of(spec.get("startupProbe"))
        readiness = _Probe.of(spec.get("readinessProbe"))
        liveness = _Probe.of(spec.get("livenessProbe"))
        run = _Run(started, app_ready, None, hang_s=hang)

        # A startup probe gates the other two; it fails the container after
        # failureThreshold consecutive failures.
        gate = started
        if startup is not None:
            success = startup.first_tick_at_or_after(started, app_ready)
            limit = started + startup.initial_s + (startup.failures - 1) * startup.period_s
            if success > limit:
                run.kill_s, run.kill_reason = limit, "startup"
                return run
            gate = success
        if hang is not None and hang <= gate:
            gate = math.inf

        if readiness is None:
            run.ready_s = gate if math.isfinite(gate) else None
        else:
            tick = readiness.first_tick_at_or_after(started, max(gate, app_ready))
            run.ready_s = tick + (readiness.successes - 1) * readiness.period_s
            if hang is not None and run.ready_s >= hang:
                run.ready_s = None
            if hang is not None:
                first_fail = readiness.first_tick_at_or_after(started, hang)
                run.unready_s = first_fail + (readiness.failures - 1) * readiness.period_s

        if liveness is not None and startup is None:
            # Liveness probes fail while the application is still initialising.
            first = started + liveness.initial_s
            kill = first + (liveness.failures - 1) * liveness.period_s
            if kill < app_ready:
                run.kill_s, run.kill_reason = kill, "liveness"
        if liveness is not None and hang is not None and run.kill_s is None:
            after = max(hang, gate if math.isfinite(gate) else hang)
            first_fail = liveness.first_tick_at_or_after(started, after)
            run.kill_s = first_fail + (liveness.failures - 1) * liveness.period_s
            run.kill_reason = "liveness"
        return run

    # --- advancing ------------------------------------------------------------------------

    def _advance(self, pod: Obj, state: _Pod, now: float) -> None:
        for container in state.containers.values():
            run = container.runs[-1]
            key = f"started:{container.name}:{len(container.runs)}"
            if now >= run.started_s and key not in state.emitted and state.terminating_s is None:
                state.emitted.add(key)
                if len(container.runs) == 1 and run.started_s - container.created_s > (
                    self._timing.container_start_s + 1e-9
                ):
                    self._events.record(
                        pod,
                        "Normal",
                        "Pulled",
                        f'Successfully pulled image "{container.image}"',
                        "kubelet",
                    )
                self._events.record(
                    pod, "Normal", "Created", f"Created container {container.name}", "kubelet"
                )
                self._events.record(
                    pod, "Normal", "Started", f"Started container {container.name}", "kubelet"
                )
                if container.name == self._metrics_container(state):
                    self._start_metrics(state)
            while run.kill_s is not None and now >= run.kill_s and state.terminating_s is None:
                run = self._restart(pod, state, container, run)

    def _metrics_container(self, state: _Pod) -> str | None:
        if state.dataplane_container is not None:
            return state.dataplane_container
        return None

    def _restart(self, pod: Obj, state: _Pod, container: _Container, run: _Run) -> _Run:
        assert run.kill_s is not None
        if run.kill_reason != "signal":
            probe = "Startup" if run.kill_reason == "startup" else "Liveness"
            self._events.record(
                pod,
                "Warning",
                "Unhealthy",
                f'{probe} probe failed: Get "http://{POD_IP}/healthz": context deadline exceeded',
                "kubelet",
            )
            self._events.record(
                pod,
                "Normal",
                "Killing",
                f"Container {container.name} failed {probe.lower()} probe, will be restarted",
                "kubelet",
            )
        run.ended_s, run.exit_code = run.kill_s, run.exit_code or 137
        restarts = len(container.runs)
        backoff = (
            0.0 if restarts <= 1 else min(BACKOFF_MAX_S, BACKOFF_START_S * 2 ** (restarts - 2))
        )
        if backoff:
            self._events.record(
                pod,
                "Warning",
                "BackOff",
                f"Back-off restarting failed container {container.name}",
                "kubelet",
            )
        new = self._plan(state, container, run.kill_s + backoff)
        container.runs.append(new)
        return new

    def _terminate(self, pod: Obj, state: _Pod, now: float) -> None:
        grace = pod["metadata"].get("deletionGracePeriodSeconds")
        if grace is None:
            grace = pod["spec"].get("terminationGracePeriodSeconds", 30)
        state.terminating_s = now
        state.exit_s = now + min(float(grace), self._timing.shutdown_s)
        for container in state.containers.values():
            self._events.record(
                pod, "Normal", "Killing", f"Stopping container {container.name}", "kubelet"
            )
            run = container.runs[-1]
            if run.ended_s is None:
                run.ended_s, run.exit_code = state.exit_s, 0
        self._leave(state, now)

    def _finish(self, pod: Obj, state: _Pod, now: float) -> None:
        """The process exited: the kubelet deletes the pod object for good."""
        self._forget(state, now)
        assert self._pod_rt is not None
        if self._store.find(self._pod_rt, state.namespace, state.name) is not None:
            self._store.remove(self._pod_rt, state.namespace, state.name)

    def _forget(self, state: _Pod, now: float) -> None:
        # Keep the last lines, for a client following the log as the pod goes.
        for container in state.containers.values():
            lines = [
                (t, line)
                for t, line in self._log_lines(state, container, container.runs[-1])
                if t <= now
            ]
            lines.sort(key=lambda item: item[0])
            self._final_logs[(state.namespace, state.name, container.name)] = [
                (self.stamp(t, micro=True), line) for t, line in lines
            ]
        while len(self._final_logs) > FINAL_LOGS_KEPT:
            self._final_logs.pop(next(iter(self._final_logs)))
        self._leave(state, now)
        if state.metrics is not None:
            state.metrics.close()
            state.metrics = None
        self._pods.pop(state.uid, None)

    # --- data plane and metrics ---------------------------------------------------------

    def _forwarding(self, state: _Pod, now: float) -> bool:
        if state.model is None or state.terminating_s is not None:
            return False
        container = state.containers.get(state.dataplane_container or "")
        if container is None:
            return False
        run = container.runs[-1]
        if now < run.started_s or (run.kill_s is not None and now >= run.kill_s):
            return False
        if run.hang_s is not None and now >= run.hang_s:
            return False
        return self._pod_ready(state, now)

    def _membership(self, state: _Pod, now: float) -> None:
        want = self._forwarding(state, now)
        if want and not state.joined and self._sink is not None:
            container = state.containers[state.dataplane_container or ""]
            at_s = max(now, container.runs[-1].app_ready_s)
            mac = state.vfs[0].mac if state.vfs else None
            others = [vf.mac for vf in state.vfs[1:]]
            self._sink.add_replica(
                state.replica_id, at_s, mac=mac, model=state.model, other_macs=others
            )
            state.joined = True
            log.info("%s joined the data plane at %.3f s (mac %s)", state.replica_id, at_s, mac)
        elif not want and state.joined:
            self._leave(state, now)

    def _leave(self, state: _Pod, now: float) -> None:
        if state.joined and self._sink is not None:
            self._snapshot_counters(state)
            self._sink.remove_replica(state.replica_id, now)
            log.info("%s left the data plane at %.3f s", state.replica_id, now)
        state.joined = False

    def _snapshot_counters(self, state: _Pod) -> None:
        if self._sink is None:
            return
        counters = self._sink.replica_counters().get(state.replica_id)
        if counters is not None:
            state.last_counters = _as_mapping(counters)

    def _start_metrics(self, state: _Pod) -> None:
        if state.metrics is not None:
            return

        def counters() -> Mapping[str, float] | None:
            if self._sink is None:
                return None
            current = self._sink.replica_counters().get(state.replica_id)
            if current is not None:
                return _as_mapping(current)
            return state.last_counters or None

        def ready() -> bool:
            return self._forwarding(state, self._clock.now_s())

        state.metrics = MetricsEndpoint(state.replica_id, state.model_name or "", counters, ready)
        port, url = state.metrics.port, state.metrics.url
        assert self._pod_rt is not None

        def change(obj: Obj) -> None:
            annotations = obj["metadata"].setdefault("annotations", {})
            annotations["prometheus.io/scrape"] = "true"
            annotations["prometheus.io/port"] = str(port)
            annotations["prometheus.io/path"] = "/metrics"
            annotations[METRICS_URL_ANNOTATION] = url

        self._store.mutate(self._pod_rt, state.namespace, state.name, change)

    # --- status ---------------------------------------------------------------------------

    def _pod_ready(self, state: _Pod, now: float) -> bool:
        return state.terminating_s is None and all(
            self._container_ready(c, now) for c in state.containers.values()
        )

    @staticmethod
    def _container_ready(container: _Container, now: float) -> bool:
        run = container.runs[-1]
        if run.ready_s is None or now < run.ready_s:
            return False
        if run.kill_s is not None and now >= run.kill_s:
            return False
        return run.unready_s is None or now < run.unready_s

    def _container_status(self, state: _Pod, container: _Container, now: float) -> Obj:
        run = container.runs[-1]
        out: Obj = {
            "name": container.name,
            "image": container.image,
            "imageID": f"{container.image.split(':')[0]}@sha256:{_digest(container.image)}",
            "restartCount": container.restarts,
            "ready": state.terminating_s is None and self._container_ready(container, now),
        }
        if now < run.started_s:
            waiting = "CrashLoopBackOff" if container.restarts >= 2 else "ContainerCreating"
            out["state"] = {"waiting": {"reason": waiting}}
            out["started"] = False
        elif run.ended_s is not None and now >= run.ended_s:
            out["state"] = {"terminated": self._terminated(run)}
            out["started"] = False
        else:
            out["state"] = {"running": {"startedAt": self.stamp(run.started_s)}}
            out["started"] = run.kill_reason != "startup" or now < (run.kill_s or math.inf)
            out["containerID"] = f"containerd://{_digest(state.uid + container.name)}"
        if len(container.runs) > 1:
            out["lastState"] = {"terminated": self._terminated(container.runs[-2])}
        else:
            out["lastState"] = {}
        return out

    def _terminated(self, run: _Run) -> Obj:
        ended = run.ended_s if run.ended_s is not None else run.started_s
        return {
            "exitCode": run.exit_code,
            "reason": "Error" if run.exit_code else "Completed",
            "startedAt": self.stamp(run.started_s),
            "finishedAt": self.stamp(ended),
        }

    def _write_status(self, pod: Obj, state: _Pod, now: float) -> None:
        statuses = [self._container_status(state, c, now) for c in state.containers.values()]
        started = all(now >= c.runs[0].started_s for c in state.containers.values())
        ready = self._pod_ready(state, now)
        old = pod.get("status") or {}
        phase = "Running" if started else "Pending"
        conditions = [
            ("PodReadyToStartContainers", True),
            ("Initialized", True),
            ("Ready", ready),
            ("ContainersReady", ready),
            ("PodScheduled", True),
        ]
        status: Obj = dict(old)
        status.update(
            phase=phase,
            hostIP=POD_IP,
            hostIPs=[{"ip": POD_IP}],
            podIP=POD_IP,
            podIPs=[{"ip": POD_IP}],
            startTime=self.stamp(state.bound_s),
            containerStatuses=statuses,
            conditions=_conditions(old.get("conditions") or [], conditions, self.stamp(now)),
        )
        if status == old:
            return
        assert self._pod_rt is not None

        def change(obj: Obj) -> None:
            obj["status"] = status

        self._store.mutate(self._pod_rt, state.namespace, state.name, change)

    def _next_change(self, state: _Pod, now: float) -> float | None:
        times: list[float] = []
        if state.exit_s is not None:
            times.append(state.exit_s)
        for container in state.containers.values():
            run = container.runs[-1]
            times += [
                t
                for t in (
                    run.started_s,
                    run.app_ready_s,
                    run.ready_s,
                    run.kill_s,
                    run.hang_s,
                    run.unready_s,
                    run.ended_s,
                )
                if t is not None
            ]
        future = [t for t in times if t > now]
        return min(future) if future else None

    # --- what tests and the API server ask ------------------------------------------------

    def signal(self, namespace: str, name: str, container: str, number: int) -> str | None:
        """Deliver a signal to a container's process 1; the error text when it cannot be.

        SIGSTOP hangs the application (its probes fail from then on); SIGKILL, SIGTERM and
        SIGINT end the process, which the kubelet restarts; SIGCONT resumes nothing (a
        stopped emulated process stays stopped) and says so.
        """
        now = self._clock.now_s()
        state = next(
            (s for s in self._pods.values() if (s.namespace, s.name) == (namespace, name)), None
        )
        target = state.containers.get(container) if state is not None else None
        if state is None or target is None:
            return "No such process"
        run = target.runs[-1]
        if now < run.started_s or (run.kill_s is not None and now >= run.kill_s):
            return "No such process"
        if number == 19:  # SIGSTOP
            target.runs[-1] = self._replan_hang(state, target, now)
        elif number == 18:  # SIGCONT
            if run.hang_s is not None and now >= run.hang_s:
                return "the lab cannot resume a stopped emulated process"
        else:
            run.kill_s, run.kill_reason, run.exit_code = now, "signal", 128 + number
        log.info("signal %d to %s/%s container %s", number, namespace, name, container)
        return None

    def hang(self, namespace: str, name: str) -> None:
        """Make a pod's application hang now (its probes fail from the next tick)."""
        now = self._clock.now_s()
        for state in self._pods.values():
            if (state.namespace, state.name) == (namespace, name):
                for container in state.containers.values():
                    container.runs[-1] = self._replan_hang(state, container, now)
                return

    def _replan_hang(self, state: _Pod, container: _Container, now: float) -> _Run:
        saved = state.hang_after_s
        run = container.runs[-1]
        state.hang_after_s = now - run.started_s
        begin = run.started_s - self._timing.container_start_s
        new = self._plan(state, container, begin)
        state.hang_after_s = saved
        return replace(new, ended_s=run.ended_s)

    def logs(
        self, namespace: str, name: str, container: str | None, previous: bool
    ) -> list[tuple[str, str]] | None:
        """(RFC 3339 timestamp, line) pairs of a container's log so far; None if unknown."""
        now = self._clock.now_s()
        for state in self._pods.values():
            if (state.namespace, state.name) != (namespace, name):
                continue
            target = state.containers.get(container or next(iter(state.containers)))
            if target is None:
                return None
            runs = target.runs[:-1] if previous else target.runs
            if not runs:
                return []
            run = runs[-1]
            lines = [(t, line) for t, line in self._log_lines(state, target, run) if t <= now]
            lines.sort(key=lambda item: item[0])
            return [(self.stamp(t, micro=True), line) for t, line in lines]
        return None

    def ready_since_s(self, uid: str) -> float | None:
        """Lab time since which the pod has been Ready, None when it is not Ready."""
        state = self._pods.get(uid)
        now = self._clock.now_s()
        if state is None or not self._pod_ready(state, now):
            return None
        return max((c.runs[-1].ready_s or now for c in state.containers.values()), default=now)

    def final_logs(self, namespace: str, name: str, container: str) -> list[tuple[str, str]]:
        """The log of a container whose pod is gone, as it was when the process exited."""
        return list(self._final_logs.get((namespace, name, container), []))

    def pod_running(self, namespace: str, name: str) -> bool:
        return any((s.namespace, s.name) == (namespace, name) for s in self._pods.values())

    def _log_lines(self, state: _Pod, container: _Container, run: _Run) -> list[tuple[float, str]]:
        app = state.model_name or container.name
        lines = [
            (run.started_s, f"{app}: starting {container.image} on node {state.node}"),
        ]
        if container.name == state.dataplane_container:
            lines.append((run.started_s, f"{app}: EAL: probing VFIO devices, hugepages 1048576kB"))
            for i, vf in enumerate(state.vfs, start=1):
                lines.append(
                    (
                        run.started_s + 0.2 * state.app_init_s,
                        f"{app}: interface net{i} pci {vf.pci_address} mac {vf.mac} link up",
                    )
                )
            lines.append(
                (
                    run.app_ready_s,
                    f"{app}: data plane ready, forwarding on {len(state.vfs)} interface(s)",
                )
            )
        else:
            lines.append((run.app_ready_s, f"{app}: ready"))
        if run.hang_s is not None:
            lines.append((run.hang_s, f"{app}: watchdog: worker thread stalled"))
        if run.kill_s is not None:
            lines.append((run.kill_s, f"{app}: killed (signal 9)"))
        if state.terminating_s is not None and run is container.runs[-1]:
            lines.append((state.terminating_s, f"{app}: received SIGTERM, draining"))
            if state.exit_s is not None:
                lines.append((state.exit_s - 1e-6, f"{app}: exiting"))
        return lines

    def close(self) -> None:
        now = self._clock.now_s()
        for state in list(self._pods.values()):
            self._forget(state, now)


def _conditions(old: list[Obj], wanted: list[tuple[str, bool]], stamp: str) -> list[Obj]:
    previous = {c.get("type"): c for c in old}
    out = []
    for kind, ok in wanted:
        status = "True" if ok else "False"
        before = previous.get(kind)
        if before is not None and before.get("status") == status:
            out.append(before)
            continue
        entry: Obj = {
            "type": kind,
            "status": status,
            "lastProbeTime": None,
            "lastTransitionTime": stamp,
        }
        if not ok and kind in ("Ready", "ContainersReady"):
            entry["reason"] = "ContainersNotReady"
        out.append(entry)
    return out


def _float(value: Any, fallback: float | None) -> Any:
    try:
        return float(value) if value is not None else fallback
    except (TypeError, ValueError):
        return fallback


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _as_mapping(counters: Any) -> dict[str, float]:
    if isinstance(counters, Mapping):
        return {str(k): float(v) for k, v in counters.items()}
    return {k: float(v) for k, v in vars(counters).items() if isinstance(v, int | float)}
