"""Runtime checks against the lab's Kubernetes-compatible API server (the real official
client on loopback): each check passes on a well-behaved workload and fails on one
built to break it, naming the impacted resource."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from bench.checks import checks_needing, run_runtime_checks
from bench.checks.artifacts import parse_documents
from bench.checks.context import CheckContext
from bench.checks.kube import KubeView
from bench.checks.registry import CheckResult, Need, Resource, Status, run_check
from bench.checks.runtime import RUNTIME_CHECK_IDS, parse_problems, promtool_problems
from lab.supervisor import LabOptions, Supervisor

TIME_SCALE = 200.0
MODEL_IMAGE = "registry.lab.local/cnfbench/vpp-router:24.02"
PROBES = {
    "readinessProbe": {"tcpSocket": {"port": 9100}, "periodSeconds": 1},
    "livenessProbe": {"tcpSocket": {"port": 9100}, "periodSeconds": 2},
}
_names = itertools.count()


class Cluster:
    def __init__(self, tmp: Path) -> None:
        self.supervisor = Supervisor(
            LabOptions(state_dir=tmp, replicas=0, noise=False, time_scale=TIME_SCALE)
        )
        self.state = self.supervisor.start()
        kubeconfig = self.state["kubernetes"]["kubeconfig"]
        self.api = config.new_client_from_config(config_file=kubeconfig)
        self.core = client.CoreV1Api(self.api)
        self.apps = client.AppsV1Api(self.api)

    def deploy(
        self,
        replicas: int = 2,
        container: dict[str, Any] | None = None,
        annotations: dict[str, str] | None = None,
        **spec: Any,
    ) -> KubeView:
        """A Deployment of the data-plane model in a namespace of its own, rolled out."""
        ns = f"cnf-{next(_names)}"
        self.core.create_namespace({"metadata": {"name": ns}})
        body = deployment(replicas, container, annotations, **spec)
        self.apps.create_namespaced_deployment(ns, body)
        kube = KubeView(self.api, ns, "Deployment", "router", time_scale=TIME_SCALE, poll_s=1.0)
        if body["spec"]["template"]["metadata"]["annotations"].get(NEVER_READY) is None:
            kube.wait_for("rolled out", kube.rolled_out, 3000)
        return kube

    def remove(self, kube: KubeView) -> None:
        self.apps.delete_namespaced_deployment(kube.name, kube.namespace)
        kube.wait_for("pods gone", lambda: not kube.pods("app=router"), 3000)

    def context(self, kube: KubeView, **kw: Any) -> CheckContext:
        return CheckContext(
            cluster=kube,
            namespace=kube.namespace,
            workload_name=kube.name,
            time_scale=TIME_SCALE,
            ready_timeout_s=400.0,
            **kw,
        )


NEVER_READY = "lab.cnfbench.io/startup-seconds"
HANG = "lab.cnfbench.io/hang-after-seconds"


def deployment(
    replicas: int,
    container: dict[str, Any] | None = None,
    annotations: dict[str, str] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "router"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "router"}},
            "template": {
                "metadata": {"labels": {"app": "router"}, "annotations": annotations or {}},
                "spec": {
                    "containers": [
                        {"name": "vpp", "image": MODEL_IMAGE, **PROBES, **(container or {})}
                    ]
                },
            },
            **spec,
        },
    }


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    cluster = Cluster(tmp_path_factory.mktemp("lab"))
    yield cluster
    cluster.supervisor.shutdown()


@pytest.fixture
def workload(lab: Cluster) -> Iterator[Callable[..., KubeView]]:
    made: list[KubeView] = []

    def make(*args: Any, **kw: Any) -> KubeView:
        made.append(lab.deploy(*args, **kw))
        return made[-1]

    yield make
    for kube in made:
        lab.remove(kube)


def run(lab: Cluster, kube: KubeView, check_id: str, **kw: Any) -> CheckResult:
    (result,) = run_runtime_checks(lab.context(kube, **kw), only=[check_id])
    return result


def workload_resource(kube: KubeView) -> Resource:
    return Resource("Deployment", kube.namespace, "router")


def test_every_cluster_check_is_a_runtime_check() -> None:
    assert [c.id for c in checks_needing(Need.CLUSTER)] == list(RUNTIME_CHECK_IDS)


def test_well_behaved_workload_passes_and_is_left_as_found(
    lab: Cluster, workload: Callable[..., KubeView]
) -> None:
    kube = workload(2)
    manifests = parse_documents(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: router}\n"
        f"spec: {{template: {{spec: {{containers: [{{name: vpp, image: '{MODEL_IMAGE}'}}]}}}}}}\n",
        "router.yaml",
        kube.namespace,
    )
    from bench.checks.artifacts import Artifacts

    art = Artifacts("router", Path("router.yaml"), kube.namespace, tuple(manifests))
    results = run_runtime_checks(
        lab.context(kube, artifacts=art, restarts_at_start=kube.restarts())
    )
    got = {r.id: r for r in results}
    assert [r.id for r in results] == list(RUNTIME_CHECK_IDS)
    for check_id in RUNTIME_CHECK_IDS[:-1]:
        assert got[check_id].status is Status.PASSED, (check_id, got[check_id].message)
    # the lab serves no pods/exec: the liveness hang cannot be provoked, and it says so
    assert got["liveness-restart"].status is Status.SKIPPED
    assert "exec" in got["liveness-restart"].message

    assert got["scale-up-down"].figures["scale_up_s"] > 0
    assert got["pod-recovery"].figures["recovery_s"] > 0
    assert got["rolling-update"].figures["min_ready"] >= 1
    assert any("metric families" in e for e in got["metrics-endpoint"].evidence)
    # left as found: the same replica count, all ready, the original template back
    assert kube.spec_replicas() == 2 and len(kube.ready_pods()) == 2
    assert "kubectl.kubernetes.io/restartedAt" not in kube.template_annotations()


def test_restarts_during_the_run_fail(lab: Cluster, workload: Callable[..., KubeView]) -> None:
    kube = workload(1, annotations={HANG: "20"})  # the app hangs 20 s after each start
    kube.wait_for("a restart", lambda: any(kube.restarts().values()), 3000)
    result = run(lab, kube, "no-restarts", restarts_at_start={})
    assert result.status is Status.FAILED
    (pod,) = kube.pods()
    assert result.impacted == (Resource("Pod", kube.namespace, pod["metadata"]["name"], "vpp"),)
    baseline = run(lab, kube, "no-restarts", restarts_at_start=kube.restarts())
    assert baseline.status is Status.PASSED or "restarted" in baseline.message


def test_runtime_differs_from_manifests(lab: Cluster, workload: Callable[..., KubeView]) -> None:
    kube = workload(1, container={"securityContext": {"privileged": True}})
    manifests = parse_documents(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: router}\nspec:\n"
        "  template: {spec: {containers: [{name: vpp, image: 'example/other:1.0'}]}}\n",
        "router.yaml",
        kube.namespace,
    )
    from bench.checks.artifacts import Artifacts

    art = Artifacts("router", Path("router.yaml"), kube.namespace, tuple(manifests))
    result = run(lab, kube, "runtime-matches-manifests", artifacts=art)
    assert result.status is Status.FAILED
    (pod,) = kube.pods()
    assert result.impacted == (Resource("Pod", kube.namespace, pod["metadata"]["name"], "vpp"),)
    evidence = "\n".join(result.evidence)
    assert "runs privileged" in evidence and "example/other:1.0" in evidence


def test_no_logs_and_no_metrics_fail(lab: Cluster, workload: Callable[..., KubeView]) -> None:
    kube = workload(1, container={"image": "registry.example.com/quiet/app:1.0"})
    (pod,) = kube.ready_pods()
    name = pod["metadata"]["name"]
    logs = run(lab, kube, "logs-produced")
    metrics = run(lab, kube, "metrics-endpoint")
    if kube.logs(name, "vpp").strip():
        assert logs.status is Status.PASSED
    else:
        assert logs.status is Status.FAILED
        assert logs.impacted == (Resource("Pod", kube.namespace, name, "vpp"),)
    assert metrics.status is Status.FAILED
    assert metrics.impacted == (Resource("Pod", kube.namespace, name),)
    assert "no metrics endpoint declared" in metrics.evidence[0]


def test_scale_up_beyond_the_nodes_fails(lab: Cluster, workload: Callable[..., KubeView]) -> None:
    # every pod takes a whole node's VFs: three nodes hold three replicas, not four
    vfs = {"resources": {"limits": {"intel.com/sriov_netdevice": "8"}}}
    kube = workload(3, container=vfs)
    result = run(lab, kube, "scale-up-down")
    assert result.status is Status.FAILED
    assert result.impacted == (workload_resource(kube),)
    assert "scale up to 4" in result.message
    kube.wait_for("back to 3", kube.rolled_out, 3000)


def test_pods_that_never_get_ready_fail_recovery(
    lab: Cluster, workload: Callable[..., KubeView]
) -> None:
    kube = workload(2, annotations={NEVER_READY: "100000"})
    result = run(lab, kube, "pod-recovery")
    assert result.status is Status.FAILED
    assert result.impacted == (workload_resource(kube),)


def test_recreate_strategy_fails_the_rolling_update(
    lab: Cluster, workload: Callable[..., KubeView]
) -> None:
    kube = workload(2, strategy={"type": "Recreate"})
    result = run(lab, kube, "rolling-update")
    assert result.status is Status.FAILED
    assert result.figures["min_ready"] == 0
    assert result.impacted == (workload_resource(kube),)


def test_rollback_without_history_fails(lab: Cluster, workload: Callable[..., KubeView]) -> None:
    kube = workload(1, revisionHistoryLimit=0)
    result = run(lab, kube, "rollback")
    assert result.status is Status.FAILED
    assert "no previous revision" in result.message
    assert result.impacted == (workload_resource(kube),)


def test_metrics_parsers_reject_what_prometheus_rejects() -> None:
    good = "# HELP up_total Ups.\n# TYPE up_total counter\nup_total 1\n"
    assert parse_problems(good) == (1, [])
    assert parse_problems("up{ 1\n")[1]
    assert promtool_problems(good) == []
    bad = promtool_problems("# TYPE x counter\n# TYPE x counter\nx 1\n")
    assert bad  # promtool rejects a duplicated TYPE line


def test_checks_without_a_cluster_are_skipped() -> None:
    (result,) = [run_check(c, CheckContext()) for c in checks_needing(Need.CLUSTER)][:1]
    assert result.status is Status.SKIPPED
    assert "needs cluster" in result.message


def test_timing_follows_the_cluster_time_base(lab: Cluster) -> None:
    kube = KubeView(lab.api, "default", "Deployment", "x", time_scale=TIME_SCALE)
    start = time.monotonic()
    kube.sleep(20.0)  # 20 s of lab time is 0.1 s of wall time
    assert time.monotonic() - start == pytest.approx(0.1, abs=0.05)


def test_liveness_restart_through_the_cluster_drivers_exec(
    lab: Cluster, workload: Callable[..., KubeView]
) -> None:
    from bench.cluster import Cluster as Driver

    driver = Driver(lab.api, time_scale=TIME_SCALE)
    probed = workload(1)
    ctx = lab.context(probed)
    ctx.cluster = driver  # the runtime checks reach the API through the driver's ApiClient
    (result,) = run_runtime_checks(ctx, only=["liveness-restart"])
    assert result.status is Status.PASSED, result.message
    assert result.figures["recovery_s"] > 0
    assert any(probed.restarts().values())

    unprobed = workload(1, container={"livenessProbe": None})
    (pod,) = unprobed.pods()
    ctx = lab.context(unprobed)
    ctx.cluster = driver
    (result,) = run_runtime_checks(ctx, only=["liveness-restart"])
    assert result.status is Status.FAILED
    assert result.impacted == (
        Resource("Pod", unprobed.namespace, pod["metadata"]["name"], "vpp"),
    )
    # the hung pod was replaced: the workload is whole again
    unprobed.wait_for(
        "replaced", lambda: unprobed.rolled_out() and len(unprobed.pods()) == 1, 3000
    )
    assert unprobed.ready_pods()[0]["metadata"]["name"] != pod["metadata"]["name"]
