"""The lab cluster's controller loop, scheduler and kubelet, seen through the official client.

Ownership (Deployment -> ReplicaSet -> Pod), scheduling against allocatable SR-IOV VFs,
readiness on the probes' schedule in lab time, rolling updates within maxSurge and
maxUnavailable, replacement of deleted pods, liveness restarts, stateful sets, garbage
collection, Multus network status, the data plane's replicas and per-pod metrics.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, watch
from prometheus_client.parser import text_string_to_metric_families

from lab.dataplane import Lane
from tests.k8s_lab import SRIOV_NADS, LabApi, deployment, lab_api

NS = "cnf"


def _prepare(api: LabApi) -> LabApi:
    """The CNF namespace with its two SR-IOV network attachments."""
    client.CoreV1Api(api.client).create_namespace({"metadata": {"name": NS}})
    for obj in yaml.safe_load_all(SRIOV_NADS.replace("NS", NS)):
        code, _ = api.request(
            "POST",
            f"/apis/k8s.cni.cncf.io/v1/namespaces/{NS}/network-attachment-definitions",
            obj,
        )
        assert code == 201
    return api


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[LabApi]:
    with lab_api(tmp_path, time_scale=50.0) as api:
        yield _prepare(api)


def _apps(lab: LabApi) -> Any:
    return client.AppsV1Api(lab.client)


def _core(lab: LabApi) -> Any:
    return client.CoreV1Api(lab.client)


def _ready_pods(lab: LabApi, selector: str = "app=router") -> list[Any]:
    pods = _core(lab).list_namespaced_pod(NS, label_selector=selector).items
    return [
        p
        for p in pods
        if p.metadata.deletion_timestamp is None
        and any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])
    ]


def _wait_rollout(lab: LabApi, name: str = "router", timeout_s: float = 20.0) -> Any:
    apps = _apps(lab)

    def done() -> Any:
        d = apps.read_namespaced_deployment(name, NS)
        s = d.status
        ok = (
            (s.observed_generation or 0) >= d.metadata.generation
            and (s.updated_replicas or 0) == d.spec.replicas
            and (s.replicas or 0) == d.spec.replicas
            and (s.available_replicas or 0) == d.spec.replicas
        )
        return d if ok else None

    return lab.wait_for(done, timeout_s)


def test_deployment_owns_replicaset_owns_pods(lab: LabApi) -> None:
    _apps(lab).create_namespaced_deployment(NS, deployment(replicas=2))
    d = _wait_rollout(lab)
    rs_list = _apps(lab).list_namespaced_replica_set(NS).items
    assert len(rs_list) == 1
    rs = rs_list[0]
    digest = rs.metadata.labels["pod-template-hash"]
    assert rs.metadata.name == f"router-{digest}"
    assert rs.metadata.owner_references[0].uid == d.metadata.uid
    assert rs.metadata.annotations["deployment.kubernetes.io/revision"] == "1"
    pods = _core(lab).list_namespaced_pod(NS).items
    assert len(pods) == 2
    for pod in pods:
        assert pod.metadata.name.startswith(f"router-{digest}-")
        assert len(pod.metadata.name) == len(f"router-{digest}-") + 5
        assert pod.metadata.owner_references[0].uid == rs.metadata.uid
        assert pod.metadata.labels["pod-template-hash"] == digest
    status = d.status
    assert status.ready_replicas == status.available_replicas == status.updated_replicas == 2
    reasons = {c.type: c.reason for c in status.conditions}
    assert reasons == {
        "Available": "MinimumReplicasAvailable",
        "Progressing": "NewReplicaSetAvailable",
    }


def test_pods_become_ready_after_pull_start_and_probe(tmp_path: Path) -> None:
    # A slower lab clock, so that wall-clock noise is small in lab seconds.
    with lab_api(tmp_path, time_scale=10.0) as api:
        _check_ready_timing(_prepare(api))


def _check_ready_timing(lab: LabApi) -> None:
    _core(lab).list_namespaced_pod(NS)  # the client's models are loaded before timing
    created_s = lab.clock.now_s()
    _apps(lab).create_namespaced_deployment(NS, deployment(replicas=1))
    pod = lab.wait_for(lambda: (_ready_pods(lab) or [None])[0])
    ready_s = lab.clock.now_s()
    # Image pull 4 s + container start 1 s + application init 2 s, then the next tick
    # of the readiness probe (period 1 s): ready at 7 s of lab time, seen a little later.
    assert 7.0 <= ready_s - created_s < 10.0
    assert pod.status.phase == "Running" and pod.status.pod_ip == "127.0.0.1"
    cs = pod.status.container_statuses[0]
    assert cs.ready and cs.restart_count == 0 and cs.state.running is not None
    events = _core(lab).list_namespaced_event(NS).items
    reasons = [e.reason for e in events if e.involved_object.name == pod.metadata.name]
    assert reasons[:2] == ["Scheduled", "Pulling"] and "Started" in reasons
    # The second pod on the same node finds the image already there.
    _apps(lab).patch_namespaced_deployment_scale("router", NS, {"spec": {"replicas": 4}})
    _wait_rollout(lab)
    messages = [e.message for e in _core(lab).list_namespaced_event(NS).items]
    assert any("already present on machine" in m for m in messages)


def test_sriov_pods_carry_network_status_and_join_the_data_plane(lab: LabApi) -> None:
    _apps(lab).create_namespaced_deployment(NS, deployment(replicas=4))
    _wait_rollout(lab)
    pods = _ready_pods(lab)
    seen_pci: set[tuple[str, str]] = set()
    first_macs = {}
    for pod in pods:
        status = json.loads(pod.metadata.annotations["k8s.v1.cni.cncf.io/network-status"])
        assert status[0]["default"] is True and status[0]["interface"] == "eth0"
        vfs = status[1:]
        assert [v["interface"] for v in vfs] == ["net1", "net2"]
        assert [v["name"] for v in vfs] == [f"{NS}/sriov-west", f"{NS}/sriov-east"]
        for vf in vfs:
            key = (pod.spec.node_name, vf["device-info"]["pci"]["pci-address"])
            assert key not in seen_pci  # a VF belongs to one pod at a time
            seen_pci.add(key)
        first_macs[f"{NS}/{pod.metadata.name}"] = vfs[0]["mac"]
    macs = lab.dataplane.replica_macs()
    assert macs == first_macs
    assert len(set(macs.values())) == 4


def test_pod_asking_for_more_vfs_than_any_node_has_stays_pending(lab: LabApi) -> None:
    _apps(lab).create_namespaced_deployment(NS, deployment(name="big", vfs=9))
    message = "0/3 nodes are available: 3 Insufficient intel.com/sriov_netdevice."

    def pending() -> Any:
        pods = _core(lab).list_namespaced_pod(NS, label_selector="app=big").items
        for pod in pods:
            for c in pod.status.conditions or []:
                if c.type == "PodScheduled" and c.status == "False":
                    return pod, c
        return None

    pod, cond = lab.wait_for(pending)
    assert pod.status.phase == "Pending" and pod.spec.node_name is None
    assert cond.reason == "Unschedulable" and cond.message.startswith(message)
    events = (
        _core(lab)
        .list_namespaced_event(NS, field_selector=f"involvedObject.name={pod.metadata.name}")
        .items
    )
    assert [(e.type, e.reason) for e in events] == [("Warning", "FailedScheduling")]
    assert lab.dataplane.replica_ids() == []


def test_vf_pool_limits_replicas_and_freed_vfs_schedule_the_rest(lab: LabApi) -> None:
    # 3 nodes x 8 VFs, 2 VFs per pod: 12 pods fit, the 13th waits.
    apps = _apps(lab)
    apps.create_namespaced_deployment(NS, deployment(replicas=13))
    lab.wait_for(lambda: len(_ready_pods(lab)) == 12, 20)
    pending = [p for p in _core(lab).list_namespaced_pod(NS).items if not p.spec.node_name]
    assert len(pending) == 1
    d = apps.read_namespaced_deployment("router", NS)
    assert d.status.ready_replicas == 12 and d.status.unavailable_replicas == 1
    assert len(lab.dataplane.replica_ids()) == 12
    # Another workload leaves; the waiting pod gets its VFs.
    apps.patch_namespaced_deployment_scale("router", NS, {"spec": {"replicas": 12}})
    lab.wait_for(lambda: all(p.spec.node_name for p in _core(lab).list_namespaced_pod(NS).items))


def test_deleted_pod_is_replaced_and_leaves_the_data_plane(lab: LabApi) -> None:
    _apps(lab).create_namespaced_deployment(NS, deployment(replicas=3))
    _wait_rollout(lab)
    victim = _ready_pods(lab)[0].metadata.name
    deleted = _core(lab).delete_namespaced_pod(victim, NS)
    assert deleted.metadata.deletion_timestamp is not None  # graceful: not gone yet
    # The kubelet stops it at once: it leaves the data plane within the next pass.
    lab.wait_for(lambda: f"{NS}/{victim}" not in lab.dataplane.replica_ids(), 1.0)
    lab.wait_for(
        lambda: victim not in {p.metadata.name for p in _core(lab).list_namespaced_pod(NS).items}
    )
    lab.wait_for(lambda: len(_ready_pods(lab)) == 3)
    names = {p.metadata.name for p in _ready_pods(lab)}
    assert victim not in names
    assert len(lab.dataplane.replica_ids()) == 3


def test_rolling_update_with_max_unavailable_zero_never_drops_capacity(lab: LabApi) -> None:
    apps = _apps(lab)
    apps.create_namespaced_deployment(NS, deployment(replicas=4, max_surge=1, max_unavailable=0))
    d = _wait_rollout(lab)
    statuses: list[Any] = []
    counts: list[int] = []
    stop = threading.Event()

    def record() -> None:
        stream = watch.Watch()
        for event in stream.stream(
            apps.list_namespaced_deployment,
            NS,
            resource_version=d.metadata.resource_version,
            timeout_seconds=20,
        ):
            statuses.append(event["object"].status)
            counts.append(len(lab.dataplane.replica_ids()))
            if stop.is_set():
                stream.stop()

    watcher = threading.Thread(target=record)
    watcher.start()
    apps.patch_namespaced_deployment(
        "router",
        NS,
        {
            "spec": {
                "template": {
                    "spec": {
                        "containers": [
                            {
                                "name": "router",
                                "image": "registry.lab.local/cnfbench/vpp-router:24.06",
                            }
                        ]
                    }
                }
            }
        },
    )
    done = _wait_rollout(lab)
    stop.set()
    apps.patch_namespaced_deployment("router", NS, {"metadata": {"labels": {"end": "1"}}})
    watcher.join(timeout=10)
    assert done.metadata.annotations["deployment.kubernetes.io/revision"] == "2"
    assert statuses, "the watch saw the rollout"
    assert all((s.available_replicas or 0) >= 4 for s in statuses)
    assert all((s.replicas or 0) <= 5 for s in statuses)  # replicas + maxSurge
    assert min(counts) >= 4
    images = {p.spec.containers[0].image for p in _ready_pods(lab)}
    assert images == {"registry.lab.local/cnfbench/vpp-router:24.06"}
    old, new = sorted(
        apps.list_namespaced_replica_set(NS).items,
        key=lambda r: r.metadata.annotations["deployment.kubernetes.io/revision"],
    )
    assert old.spec.replicas == 0 and new.spec.replicas == 4


def test_hung_application_fails_liveness_and_restarts(lab: LabApi) -> None:
    liveness = {
        "httpGet": {"path": "/healthz", "port": 8080},
        "initialDelaySeconds": 3,
        "periodSeconds": 2,
        "failureThreshold": 2,
    }
    body = deployment(
        replicas=1, liveness=liveness, annotations={"lab.cnfbench.io/hang-after-seconds": "6"}
    )
    _apps(lab).create_namespaced_deployment(NS, body)

    def restarted() -> Any:
        for pod in _core(lab).list_namespaced_pod(NS).items:
            cs = (pod.status.container_statuses or [None])[0]
            if cs is not None and cs.restart_count >= 1:
                return pod
        return None

    pod = lab.wait_for(restarted, 20)
    cs = pod.status.container_statuses[0]
    assert cs.last_state.terminated.exit_code == 137
    previous = _core(lab).read_namespaced_pod_log(pod.metadata.name, NS, previous=True)
    assert "watchdog: worker thread stalled" in previous
    assert "killed (signal 9)" in previous
    reasons = {e.reason for e in _core(lab).list_namespaced_event(NS).items}
    assert {"Unhealthy", "Killing"} <= reasons


def test_statefulset_creates_pods_in_order(lab: LabApi) -> None:
    template = deployment(name="fw", vfs=0)["spec"]["template"]
    sts = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "fw"},
        "spec": {
            "replicas": 3,
            "serviceName": "fw",
            "selector": {"matchLabels": {"app": "fw"}},
            "template": template,
        },
    }
    _apps(lab).create_namespaced_stateful_set(NS, sts)

    def ready() -> Any:
        s = _apps(lab).read_namespaced_stateful_set("fw", NS).status
        return s if (s.ready_replicas or 0) == 3 else None

    status = lab.wait_for(ready, 30)
    assert status.current_revision == status.update_revision
    pods = sorted(
        _core(lab).list_namespaced_pod(NS, label_selector="app=fw").items,
        key=lambda p: p.metadata.name,
    )
    assert [p.metadata.name for p in pods] == ["fw-0", "fw-1", "fw-2"]
    # OrderedReady: each pod was created only after the previous one was Ready.
    for before, after in itertools.pairwise(pods):
        ready_at = next(
            c.last_transition_time for c in before.status.conditions if c.type == "Ready"
        )
        assert after.metadata.creation_timestamp >= ready_at


def test_deleting_a_deployment_collects_its_replicasets_and_pods(lab: LabApi) -> None:
    _apps(lab).create_namespaced_deployment(NS, deployment(replicas=2))
    _wait_rollout(lab)
    _apps(lab).delete_namespaced_deployment("router", NS)
    lab.wait_for(lambda: not _core(lab).list_namespaced_pod(NS).items)
    assert not _apps(lab).list_namespaced_replica_set(NS).items
    assert lab.dataplane.replica_ids() == []


def test_missing_network_attachment_keeps_the_pod_creating(lab: LabApi) -> None:
    body = deployment(name="lost", annotations={"k8s.v1.cni.cncf.io/networks": "nowhere"})
    _apps(lab).create_namespaced_deployment(NS, body)

    def sandbox_failed() -> Any:
        return [
            e
            for e in _core(lab).list_namespaced_event(NS).items
            if e.reason == "FailedCreatePodSandBox"
        ]

    events = lab.wait_for(sandbox_failed)
    assert 'network-attachment-definitions.k8s.cni.cncf.io "nowhere" not found' in (
        events[0].message
    )
    pods = _core(lab).list_namespaced_pod(NS, label_selector="app=lost").items
    assert pods[0].status.phase == "Pending" and not _ready_pods(lab, "app=lost")


def test_disruption_budget_status_follows_ready_pods(lab: LabApi) -> None:
    _apps(lab).create_namespaced_deployment(NS, deployment(replicas=3))
    client.PolicyV1Api(lab.client).create_namespaced_pod_disruption_budget(
        NS,
        {
            "metadata": {"name": "router"},
            "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "router"}}},
        },
    )
    _wait_rollout(lab)

    def allowed() -> Any:
        pdb = client.PolicyV1Api(lab.client).read_namespaced_pod_disruption_budget("router", NS)
        return pdb.status if pdb.status and pdb.status.current_healthy == 3 else None

    status = lab.wait_for(allowed)
    assert status.desired_healthy == 2 and status.disruptions_allowed == 1


def test_metrics_endpoint_counts_what_the_replica_forwarded(lab: LabApi) -> None:
    _apps(lab).create_namespaced_deployment(NS, deployment(replicas=2))
    _wait_rollout(lab)
    pods = _ready_pods(lab)
    now = lab.clock.now_s() + 10.0  # past the model's warm-up
    lane = Lane(0, 1, 2e6, ((64, 1.0),), flows=1000)
    outcome = lab.dataplane.forward([lane], now, 1.0)[0]
    assert outcome.forwarded > 0
    counters = lab.dataplane.replica_counters()
    total = 0.0
    for pod in pods:
        url = pod.metadata.annotations["lab.cnfbench.io/metrics-url"]
        port = pod.metadata.annotations["prometheus.io/port"]
        assert url == f"http://127.0.0.1:{port}/metrics"
        text = urllib.request.urlopen(url, timeout=5).read().decode()
        lint = subprocess.run(
            ["promtool", "check", "metrics"],
            input=text,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert lint.returncode == 0, lint.stdout + lint.stderr
        samples = {
            s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples
        }
        replica = counters[f"{NS}/{pod.metadata.name}"]
        assert samples["cnf_rx_packets_total"] == replica.rx_packets
        assert samples["cnf_tx_packets_total"] == replica.tx_packets
        assert samples["cnf_ready"] == 1.0
        total += samples["cnf_tx_packets_total"]
    assert total == outcome.forwarded


def test_min_ready_seconds_delays_availability(lab: LabApi) -> None:
    body = deployment(replicas=1)
    body["spec"]["minReadySeconds"] = 10
    _apps(lab).create_namespaced_deployment(NS, body)
    lab.wait_for(lambda: _ready_pods(lab))
    ready_s = lab.clock.now_s()
    d = _apps(lab).read_namespaced_deployment("router", NS)
    assert (d.status.ready_replicas or 0) == 1 and not d.status.available_replicas
    _wait_rollout(lab)
    assert lab.clock.now_s() - ready_s >= 9.0


def test_endpoints_follow_the_services_ready_pods(lab: LabApi) -> None:
    body = deployment(replicas=2)
    body["spec"]["template"]["spec"]["containers"][0]["ports"] = [
        {"name": "metrics", "containerPort": 9100}
    ]
    _apps(lab).create_namespaced_deployment(NS, body)
    _core(lab).create_namespaced_service(
        NS,
        {
            "metadata": {"name": "router"},
            "spec": {
                "selector": {"app": "router"},
                "ports": [{"name": "metrics", "port": 80, "targetPort": "metrics"}],
            },
        },
    )
    _wait_rollout(lab)

    def ready_addresses() -> Any:
        ep = _core(lab).read_namespaced_endpoints("router", NS)
        subset = (ep.subsets or [None])[0]
        return subset if subset and len(subset.addresses or []) == 2 else None

    subset = lab.wait_for(ready_addresses)
    assert subset.ports[0].port == 9100 and subset.ports[0].name == "metrics"
    names = {a.target_ref.name for a in subset.addresses}
    assert names == {p.metadata.name for p in _ready_pods(lab)}
    _core(lab).delete_namespaced_service("router", NS)
    lab.wait_for(lambda: not _core(lab).list_namespaced_endpoints(NS).items)


def test_traffic_addressed_to_a_vf_mac_reaches_that_pod_only(lab: LabApi) -> None:
    _apps(lab).create_namespaced_deployment(NS, deployment(replicas=2))
    _wait_rollout(lab)
    first, second = _ready_pods(lab)
    status = json.loads(first.metadata.annotations["k8s.v1.cni.cncf.io/network-status"])
    mac = status[1]["mac"]
    lane = Lane(0, 1, 1e6, ((64, 1.0),), flows=100, dst_mac=mac)
    outcome = lab.dataplane.forward([lane], lab.clock.now_s() + 10.0, 1.0)[0]
    assert outcome.forwarded > 0
    counters = lab.dataplane.replica_counters()
    assert counters[f"{NS}/{first.metadata.name}"].tx_packets == outcome.forwarded
    assert counters[f"{NS}/{second.metadata.name}"].rx_packets == 0
