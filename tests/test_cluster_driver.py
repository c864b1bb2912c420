"""The cluster driver (`bench.cluster.Cluster`) against the lab's API server.

Installs the demo vpp-router chart with the real ``helm template``, scales it from 1 to 8
replicas and back with time to ready from a watch, reports Pending pods with the
scheduler's reason, deletes a pod and measures recovery, rolls an image with
maxUnavailable 0, reads logs, restores replicas, uninstalls; and fails clearly on an
unreachable API, bad credentials and a missing workload.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from bench.cluster import (
    ChartError,
    Cluster,
    ClusterAuthError,
    ClusterUnreachable,
    WorkloadNotFound,
    WorkloadNotReady,
    WorkloadRef,
)
from bench.errors import BenchError
from bench.profiles import CnfProfile, load_profile
from lab.k8s.kubeconfig import kubeconfig_text
from tests.conftest import PROFILES
from tests.k8s_lab import SRIOV_NADS, LabApi, deployment, lab_api

CNF_DIR = PROFILES / "cnfs"


def _cnf(name: str = "vpp-router") -> CnfProfile:
    profile: CnfProfile = load_profile(CNF_DIR / f"{name}.yaml", CnfProfile).profile
    return profile


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabApi]:
    with lab_api(tmp_path_factory.mktemp("cluster"), time_scale=50.0) as api:
        yield api


@pytest.fixture(scope="module")
def cluster(lab: LabApi) -> Iterator[Cluster]:
    with Cluster.connect(lab.kubeconfig, time_scale=lab.clock.time_scale) as c:
        yield c


@pytest.fixture(scope="module")
def installed(cluster: Cluster) -> Iterator[WorkloadRef]:
    cnf = _cnf()
    installation, ready = cluster.install(cnf, CNF_DIR, timeout_s=120)
    assert ready is not None and ready.ready
    yield installation.workload
    cluster.uninstall(installation)


def test_connect_reports_version_and_nodes(cluster: Cluster, lab: LabApi) -> None:
    version = cluster.version()
    assert version.git_version == lab.server.version and version.short == "1.32"
    nodes = cluster.nodes()
    assert [n.name for n in nodes] == ["worker-0", "worker-1", "worker-2"]
    assert all(n.ready and n.allocatable["intel.com/sriov_netdevice"] == "8" for n in nodes)
    assert nodes[0].capacity["hugepages-1Gi"] == "16Gi"


def test_unreachable_api_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again when the block ends: nothing listens
    config = tmp_path / "kubeconfig"
    config.write_text(kubeconfig_text(f"https://127.0.0.1:{port}", "t"))
    with pytest.raises(ClusterUnreachable) as err:
        Cluster.connect(config)
    assert f"cannot reach the Kubernetes API at https://127.0.0.1:{port}" in str(err.value)
    assert "connection refused" in str(err.value)


def test_bad_credentials_are_a_clear_error(lab: LabApi, tmp_path: Path) -> None:
    config = tmp_path / "kubeconfig"
    config.write_text(kubeconfig_text(lab.server.url, "wrong", ca_pem=lab.server.tls.ca_pem))
    with pytest.raises(ClusterAuthError) as err:
        Cluster.connect(config)
    assert "rejected the credentials" in str(err.value) and "401" in str(err.value)


def test_missing_kubeconfig_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(BenchError) as err:
        Cluster.connect(tmp_path / "absent")
    assert "absent" in str(err.value)


def test_missing_workload_is_a_clear_error(cluster: Cluster) -> None:
    ref = WorkloadRef("default", "Deployment", "nothing-here")
    with pytest.raises(WorkloadNotFound) as err:
        cluster.scale(ref, 2)
    assert "Deployment default/nothing-here not found" in str(err.value)


def test_install_renders_the_chart_with_helm(cluster: Cluster, installed: WorkloadRef) -> None:
    status = cluster.workload(installed)
    assert status.ready_replicas == status.replicas == 1
    kinds = {r.kind for r in cluster.resources(installed.namespace)}
    assert {
        "Deployment",
        "ReplicaSet",
        "Pod",
        "Service",
        "ConfigMap",
        "PodDisruptionBudget",
        "ServiceAccount",
        "NetworkAttachmentDefinition",
    } <= kinds
    pod = cluster.pods(installed)[0]
    assert pod.ready and pod.images == ("registry.lab.local/cnfbench/vpp-router:24.02",)
    assert len(pod.vf_macs) == 2 and all(n.pci_address for n in pod.networks[1:])
    assert pod.metrics_url is not None and pod.metrics_url.startswith("http://127.0.0.1:")


def test_scale_from_one_to_eight_and_back(
    cluster: Cluster, installed: WorkloadRef, lab: LabApi
) -> None:
    up = cluster.scale(installed, 8, timeout_s=120)
    assert up.replicas_before == 1 and up.ready_replicas == 8 and up.ready
    # New pods on nodes without the image pull it (4 s), start (1 s) and pass the
    # startup and readiness probes after the application's 2 s init.
    assert up.time_to_ready_s is not None and 6.0 <= up.time_to_ready_s < 40.0
    assert len(lab.dataplane.replica_ids()) == 8
    down = cluster.scale(installed, 1, timeout_s=120)
    assert down.ready and down.ready_replicas == 1
    assert down.time_to_ready_s is not None
    lab.wait_for(lambda: len(lab.dataplane.replica_ids()) == 1)


def test_pods_that_do_not_fit_are_reported_pending_with_the_reason(
    cluster: Cluster, installed: WorkloadRef
) -> None:
    with cluster.preserving_replicas(installed):
        with pytest.raises(WorkloadNotReady) as err:
            cluster.scale(installed, 13, timeout_s=60, pending_grace_s=5)
        result = err.value.result
        assert result is not None and result.ready_replicas == 12
        assert "0/3 nodes are available: 3 Insufficient intel.com/sriov_netdevice" in str(
            err.value
        )
        pending = cluster.pending_pods(installed)
        assert len(pending) == 1 and pending[0].reason == "Unschedulable"
        nodes = cluster.nodes()
        assert all(n.free("intel.com/sriov_netdevice") == 0 for n in nodes)  # 4 pods x 2 each
        assert sum(n.requested["hugepages-1Gi"] for n in nodes) == 12 * 2 * 2**30
        warnings = cluster.events(installed.namespace, warnings_only=True)
        assert any(e.reason == "FailedScheduling" and e.name == pending[0].name for e in warnings)
        assert all(e.type == "Warning" for e in warnings)
    assert cluster.workload(installed).replicas == 1


def test_preserving_replicas_restores_after_an_error(
    cluster: Cluster, installed: WorkloadRef
) -> None:
    with pytest.raises(RuntimeError), cluster.preserving_replicas(installed) as original:
        assert original == 1
        cluster.scale(installed, 3, timeout_s=60)
        raise RuntimeError("the run was interrupted")
    status = cluster.workload(installed)
    assert status.replicas == 1


def test_delete_pod_measures_recovery(cluster: Cluster, installed: WorkloadRef) -> None:
    cluster.scale(installed, 2, timeout_s=60)
    before = {p.name for p in cluster.pods(installed)}
    recovery = cluster.delete_pod(installed, timeout_s=60)
    assert recovery.deleted_pod in before
    assert recovery.time_to_recovered_s is not None and recovery.time_to_recovered_s > 0
    assert recovery.ready_replicas == 2
    assert recovery.replacement_pods and not set(recovery.replacement_pods) & before
    after = {p.name for p in cluster.pods(installed) if not p.terminating}
    assert recovery.deleted_pod not in after


def test_rollout_a_new_image(cluster: Cluster, installed: WorkloadRef) -> None:
    new_image = "registry.lab.local/cnfbench/vpp-router:24.06"
    result = cluster.rollout(installed, new_image, timeout_s=120)
    assert result.old_image.endswith(":24.02") and result.new_image == new_image
    assert result.duration_s > 0 and result.revision == "2"
    pods = [p for p in cluster.pods(installed) if not p.terminating]
    assert {p.images[0] for p in pods} == {new_image}
    assert all(p.ready for p in pods)


def test_logs(cluster: Cluster, installed: WorkloadRef) -> None:
    pod = cluster.pods(installed)[0]
    text = cluster.logs(installed.namespace, pod.name)
    assert "data plane ready" in text
    assert len(cluster.logs(installed.namespace, pod.name, tail_lines=2).splitlines()) == 2


def test_install_from_a_manifest_directory(cluster: Cluster, tmp_path: Path) -> None:
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    (manifests / "networks.yaml").write_text(SRIOV_NADS.replace(", namespace: NS", ""))
    (manifests / "deployment.yaml").write_text(yaml.safe_dump(deployment(name="fw")))
    cnf = CnfProfile.model_validate(
        {
            "kind": "cnf",
            "name": "fw-manifests",
            "vendor": "test",
            "manifests": "manifests",
            "namespace": "fw-manifests",
            "workload": {"kind": "Deployment", "name": "fw"},
            "replicas": [1],
        }
    )
    installation, ready = cluster.install(cnf, tmp_path, timeout_s=60)
    assert installation.method == "manifests" and installation.created_namespace
    assert ready is not None and ready.ready
    names = {(o.kind, o.namespace) for o in installation.objects}
    assert ("NetworkAttachmentDefinition", "fw-manifests") in names
    cluster.uninstall(installation)
    assert not cluster.pods("fw-manifests", "app=fw")


def test_bad_manifests_and_charts_are_input_errors(cluster: Cluster, tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "bad.yaml").write_text("apiVersion: v1\nmetadata: {name: x}\n")
    cnf = CnfProfile.model_validate(
        {
            "kind": "cnf",
            "name": "bad",
            "vendor": "t",
            "manifests": "m",
            "namespace": "bad",
            "workload": {"kind": "Deployment", "name": "x"},
            "replicas": [1],
        }
    )
    with pytest.raises(ChartError) as err:
        cluster.install(cnf, tmp_path)
    assert "m: document 1: kind: required field is missing" in str(err.value)
    chart = tmp_path / "chart"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: broken\nversion: 0.1.0\n")
    (chart / "templates" / "x.yaml").write_text("{{ .Values.missing.field }}\n")
    cnf = CnfProfile.model_validate(
        {
            "kind": "cnf",
            "name": "broken",
            "vendor": "t",
            "chart": {"path": "chart"},
            "namespace": "bad",
            "workload": {"kind": "Deployment", "name": "x"},
            "replicas": [1],
        }
    )
    with pytest.raises(ChartError) as err:
        cluster.render(cnf, tmp_path)
    assert "helm could not render the chart" in str(err.value)
    assert "nil pointer evaluating interface {}.field" in str(err.value)


def _helm_releases(lab: LabApi, namespace: str) -> list[dict[str, Any]]:
    """What the real helm lists in `namespace` of the lab's cluster."""
    kubeconfig = str(lab.kubeconfig)
    listed = subprocess.run(
        ["helm", "list", "-o", "json", "-n", namespace, "--kubeconfig", kubeconfig],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    releases: list[dict[str, Any]] = json.loads(listed.stdout)
    return releases


def test_install_with_helm_upgrade_install(cluster: Cluster, lab: LabApi) -> None:
    cnf = _cnf("stateful-firewall").model_copy(update={"install": "helm"})
    installation, ready = cluster.install(cnf, CNF_DIR, timeout_s=120)
    assert installation.method == "helm" and installation.chart == "stateful-firewall-3.1.4"
    assert ready is not None and ready.ready and ready.ready_replicas == 1
    releases = _helm_releases(lab, cnf.namespace)
    assert [(r["name"], r["status"]) for r in releases] == [("stateful-firewall", "deployed")]
    pod = cluster.pods(installation.workload)[0]
    assert pod.images == ("registry.lab.local/cnfbench/stateful-firewall:3.1.4",)
    cluster.uninstall(installation)
    assert not cluster.pods(cnf.namespace, "app.kubernetes.io/name=stateful-firewall")
    assert _helm_releases(lab, cnf.namespace) == []


def test_statefulset_scale_and_rollout(cluster: Cluster) -> None:
    from kubernetes import client

    core, apps = client.CoreV1Api(cluster.api), client.AppsV1Api(cluster.api)
    core.create_namespace({"metadata": {"name": "sts"}})
    template = deployment(name="fw", vfs=0)["spec"]["template"]
    apps.create_namespaced_stateful_set(
        "sts",
        {
            "metadata": {"name": "fw"},
            "spec": {
                "replicas": 1,
                "serviceName": "fw",
                "selector": {"matchLabels": {"app": "fw"}},
                "template": template,
            },
        },
    )
    ref = WorkloadRef("sts", "StatefulSet", "fw")
    cluster.wait_ready(ref, timeout_s=60)
    up = cluster.scale(ref, 3, timeout_s=120)
    assert up.ready and up.time_to_ready_s is not None
    assert [p.name for p in cluster.pods(ref)] == ["fw-0", "fw-1", "fw-2"]
    result = cluster.rollout(ref, "registry.lab.local/cnfbench/vpp-router:24.06", timeout_s=120)
    assert result.container == "fw" and result.duration_s > 0
    assert {p.images[0] for p in cluster.pods(ref)} == {result.new_image}
    core.delete_namespace("sts")


def test_exec_stops_a_process_and_the_liveness_probe_restarts_it(
    cluster: Cluster, installed: WorkloadRef
) -> None:
    pod = next(p for p in cluster.pods(installed) if p.ready)
    done = cluster.exec_in_pod(installed.namespace, pod.name, "router", ["true"])
    assert done.exit_code == 0
    refused = cluster.exec_in_pod(installed.namespace, pod.name, "router", ["cat", "/etc/os"])
    assert refused.exit_code == 126 and "only 'kill [-SIGNAL] 1'" in refused.stderr
    stopped = cluster.exec_in_pod(installed.namespace, pod.name, "router", ["kill", "-STOP", "1"])
    assert stopped.exit_code == 0
    # The chart's liveness probe (every 5 s, 3 failures) restarts the hung container.
    recovered = cluster.wait_ready(installed, timeout_s=120)
    assert recovered.ready

    def restarted() -> bool:
        current = [p for p in cluster.pods(installed) if p.name == pod.name]
        return bool(current) and current[0].restarts == 1 and current[0].ready

    deadline = time.monotonic() + 10
    while not restarted():
        assert time.monotonic() < deadline, "the hung container was not restarted"
        time.sleep(0.02)
    previous = cluster.logs(installed.namespace, pod.name, previous=True)
    assert "watchdog: worker thread stalled" in previous


def test_installing_twice_updates_in_place(cluster: Cluster, installed: WorkloadRef) -> None:
    from kubernetes import client

    core = client.CoreV1Api(cluster.api)
    ip = core.read_namespaced_service("router-metrics", installed.namespace).spec.cluster_ip
    installation, ready = cluster.install(_cnf(), CNF_DIR, timeout_s=120)
    assert ready is not None and ready.ready
    assert not installation.created_namespace
    after = core.read_namespaced_service("router-metrics", installed.namespace)
    assert after.spec.cluster_ip == ip  # kept, not reassigned


def test_eviction_respects_the_charts_disruption_budget(
    cluster: Cluster, installed: WorkloadRef
) -> None:
    # The vpp-router chart allows one voluntary disruption at a time.  Pods that take
    # 40 lab seconds to start (0.8 wall seconds here; the startup probe allows 60) keep
    # the evicted pod's replacement from becoming Ready, and restoring the budget,
    # before the second eviction.
    template = {"metadata": {"annotations": {"lab.cnfbench.io/startup-seconds": "40"}}}
    cluster.apps.patch_namespaced_deployment(
        installed.name, installed.namespace, {"spec": {"template": template}}
    )
    cluster.wait_ready(installed, timeout_s=600)
    cluster.scale(installed, 2, timeout_s=600)
    first, second = (p.name for p in cluster.pods(installed) if p.ready and not p.terminating)
    assert cluster.evict_pod(installed.namespace, first)
    assert not cluster.evict_pod(installed.namespace, second)  # the budget is spent
    recovered = cluster.wait_ready(installed, timeout_s=600)
    assert recovered.ready
