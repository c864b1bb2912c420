"""The real kubectl against the lab's API server.

``kubectl get``, ``create -f`` (with strict server-side field validation), ``scale``,
``rollout status``, ``delete pod`` (which waits for the pod to go), ``logs``, ``describe``
and ``get -w`` behave as against kube-apiserver.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.k8s_lab import SRIOV_NADS, LabApi, deployment, lab_api

NS = "cnf"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabApi]:
    tmp = tmp_path_factory.mktemp("kubectl")
    with lab_api(tmp, time_scale=50.0) as api:
        docs = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}]
        docs += list(yaml.safe_load_all(SRIOV_NADS.replace("NS", NS)))
        body = deployment(replicas=1)
        body["metadata"]["namespace"] = NS
        docs.append(body)
        manifest = tmp / "router.yaml"
        manifest.write_text(yaml.safe_dump_all(docs))
        created = api.kubectl("create", "-f", str(manifest))
        assert "deployment.apps/router created" in created.stdout
        api.kubectl("-n", NS, "rollout", "status", "deployment/router", "--timeout=30s")
        yield api


def test_kubectl_is_the_version_the_tests_judge_by(lab: LabApi) -> None:
    out = lab.kubectl("version", "-o", "yaml").stdout
    versions = yaml.safe_load(out)
    assert versions["serverVersion"]["gitVersion"] == lab.server.version
    assert versions["clientVersion"]["minor"].rstrip("+") == "32"


def test_get_nodes_prints_server_side_columns(lab: LabApi) -> None:
    out = lab.kubectl("get", "nodes").stdout.splitlines()
    assert out[0].split() == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    assert [line.split()[:3] for line in out[1:]] == [
        ["worker-0", "Ready", "worker"],
        ["worker-1", "Ready", "worker"],
        ["worker-2", "Ready", "worker"],
    ]
    wide = lab.kubectl("get", "node", "worker-0", "-o", "wide").stdout
    assert "INTERNAL-IP" in wide and "127.0.0.1" in wide


def test_get_pods_and_jsonpath(lab: LabApi) -> None:
    out = lab.kubectl("-n", NS, "get", "pods").stdout.splitlines()
    assert out[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert out[1].split()[1:3] == ["1/1", "Running"]
    alloc = lab.kubectl(
        "get",
        "node",
        "worker-0",
        "-o",
        r"jsonpath={.status.allocatable.intel\.com/sriov_netdevice}",
    ).stdout
    assert alloc == "8"
    shorts = lab.kubectl("-n", NS, "get", "deploy,rs,po", "-o", "name").stdout.split()
    assert "deployment.apps/router" in shorts
    assert any(s.startswith("replicaset.apps/router-") for s in shorts)


def test_create_with_an_unknown_field_is_refused(lab: LabApi, tmp_path: Path) -> None:
    body = deployment(name="typo", vfs=0)
    body["metadata"]["namespace"] = NS
    body["spec"]["replicaz"] = 2
    path = tmp_path / "typo.yaml"
    path.write_text(yaml.safe_dump(body))
    done = lab.kubectl("create", "-f", str(path), check=False)
    assert done.returncode != 0
    assert 'unknown field "spec.replicaz"' in done.stderr


def test_scale_to_eight_and_back(lab: LabApi) -> None:
    lab.kubectl("-n", NS, "scale", "deployment/router", "--replicas=8")
    lab.kubectl("-n", NS, "rollout", "status", "deployment/router", "--timeout=30s")
    ready = lab.kubectl(
        "-n", NS, "get", "deployment", "router", "-o", "jsonpath={.status.readyReplicas}"
    ).stdout
    assert ready == "8"
    assert len(lab.dataplane.replica_ids()) == 8
    lab.kubectl("-n", NS, "scale", "deployment/router", "--replicas=1")
    lab.kubectl("-n", NS, "rollout", "status", "deployment/router", "--timeout=30s")
    lab.wait_for(lambda: len(lab.dataplane.replica_ids()) == 1)


def test_delete_pod_waits_until_gone_and_a_new_one_comes(lab: LabApi) -> None:
    before = lab.kubectl("-n", NS, "get", "pods", "-o", "name").stdout.split()
    assert len(before) == 1
    done = lab.kubectl("-n", NS, "delete", before[0], "--timeout=30s")
    name = before[0].removeprefix("pod/")
    assert done.stdout.strip() == f'pod "{name}" deleted'
    gone = lab.kubectl("-n", NS, "get", before[0], check=False)
    assert gone.returncode != 0 and "NotFound" in gone.stderr
    lab.kubectl("-n", NS, "rollout", "status", "deployment/router", "--timeout=30s")
    after = lab.kubectl("-n", NS, "get", "pods", "-o", "name").stdout.split()
    assert len(after) == 1 and after != before


def test_logs_show_the_vfs(lab: LabApi) -> None:
    pod = lab.kubectl("-n", NS, "get", "pods", "-o", "name").stdout.split()[0]
    out = lab.kubectl("-n", NS, "logs", pod).stdout
    assert "vpp-router: starting registry.lab.local/cnfbench/vpp-router:24.02" in out
    assert "interface net1 pci 0000:3b:" in out
    assert "data plane ready, forwarding on 2 interface(s)" in out
    tail = lab.kubectl("-n", NS, "logs", pod, "--tail=1", "--timestamps").stdout
    assert len(tail.splitlines()) == 1 and tail[:4].isdigit() and "T" in tail.split()[0]


def test_rollout_with_max_unavailable_zero(lab: LabApi) -> None:
    lab.kubectl("-n", NS, "scale", "deployment/router", "--replicas=3")
    lab.kubectl("-n", NS, "rollout", "status", "deployment/router", "--timeout=30s")
    lab.kubectl(
        "-n",
        NS,
        "set",
        "image",
        "deployment/router",
        "router=registry.lab.local/cnfbench/vpp-router:24.06",
    )
    out = lab.kubectl("-n", NS, "rollout", "status", "deployment/router", "--timeout=60s").stdout
    assert 'deployment "router" successfully rolled out' in out
    images = lab.kubectl(
        "-n", NS, "get", "pods", "-o", "jsonpath={.items[*].spec.containers[0].image}"
    ).stdout.split()
    assert images == ["registry.lab.local/cnfbench/vpp-router:24.06"] * 3
    history = lab.kubectl("-n", NS, "get", "rs", "-o", "name").stdout.split()
    assert len(history) == 2


def test_describe_pending_pod_shows_the_scheduler_message(lab: LabApi, tmp_path: Path) -> None:
    body = deployment(name="greedy", vfs=9)
    body["metadata"]["namespace"] = NS
    path = tmp_path / "greedy.yaml"
    path.write_text(yaml.safe_dump(body))
    lab.kubectl("create", "-f", str(path))
    lab.wait_for(
        lambda: "Pending" in lab.kubectl("-n", NS, "get", "pods", "-l", "app=greedy").stdout
    )
    time.sleep(0.1)
    described = lab.kubectl("-n", NS, "describe", "pods", "-l", "app=greedy").stdout
    assert "FailedScheduling" in described
    assert "0/3 nodes are available: 3 Insufficient intel.com/sriov_netdevice" in described
    lab.kubectl("-n", NS, "delete", "deployment", "greedy")


def _kubectl_stream(lab: LabApi, *args: str) -> subprocess.Popen[str]:
    """A long-running kubectl in the lab's namespace, its output read as it comes."""
    return subprocess.Popen(
        ["kubectl", "--cache-dir", str(lab.cache_dir), "-n", NS, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "KUBECONFIG": str(lab.kubeconfig)},
        start_new_session=True,
    )


def test_get_watch_streams_changes(lab: LabApi) -> None:
    watch = ("get", "deploy", "router", "-w", "--output-watch-events", "--request-timeout=20s")
    with _kubectl_stream(lab, *watch) as proc:
        try:
            assert proc.stdout is not None
            header, added = proc.stdout.readline(), proc.stdout.readline()
            # The watch is open once the current state is printed: now change it.
            lab.kubectl("-n", NS, "scale", "deployment/router", "--replicas=2")
            changes = []
            for line in proc.stdout:  # ends at EOF, when the request times out
                changes.append(line)
                if line.split()[:2] == ["MODIFIED", "router"]:
                    break
        finally:
            proc.terminate()
    assert header.split()[:2] == ["EVENT", "NAME"]
    assert added.split()[:2] == ["ADDED", "router"]
    assert changes and changes[-1].split()[:2] == ["MODIFIED", "router"]


def test_bad_token_is_refused_by_kubectl(lab: LabApi, tmp_path: Path) -> None:
    text = lab.kubeconfig.read_text().replace(lab.server.token, "expired-token")
    bad = tmp_path / "bad-kubeconfig"
    bad.write_text(text)
    done = subprocess.run(
        ["kubectl", "--cache-dir", str(tmp_path / "c"), "--kubeconfig", str(bad), "get", "pods"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert "You must be logged in to the server" in done.stderr


def test_statefulset_scale_and_rollout_status(lab: LabApi, tmp_path: Path) -> None:
    template = deployment(name="fw", vfs=0)["spec"]["template"]
    sts = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "fw", "namespace": NS},
        "spec": {
            "replicas": 1,
            "serviceName": "fw",
            "selector": {"matchLabels": {"app": "fw"}},
            "template": template,
        },
    }
    path = tmp_path / "sts.yaml"
    path.write_text(yaml.safe_dump(sts))
    lab.kubectl("create", "-f", str(path))
    lab.kubectl("-n", NS, "scale", "statefulset/fw", "--replicas=3")
    out = lab.kubectl("-n", NS, "rollout", "status", "statefulset/fw", "--timeout=60s").stdout
    assert "partitioned roll out complete" in out or "roll out complete" in out
    names = lab.kubectl("-n", NS, "get", "pods", "-l", "app=fw", "-o", "name").stdout.split()
    assert names == ["pod/fw-0", "pod/fw-1", "pod/fw-2"]
    lab.kubectl("-n", NS, "delete", "statefulset", "fw")


def test_logs_follow_streams_until_the_pod_goes(lab: LabApi) -> None:
    pod = lab.kubectl("-n", NS, "get", "pods", "-l", "app=router", "-o", "name").stdout.split()[0]
    with _kubectl_stream(lab, "logs", "-f", pod) as proc:
        try:
            assert proc.stdout is not None
            first = proc.stdout.readline()
            assert "starting registry.lab.local/cnfbench/vpp-router" in first
            lab.kubectl("-n", NS, "delete", pod, "--wait=false")
            rest = proc.stdout.read()  # ends when the pod is gone
            assert proc.wait(timeout=30) == 0
        finally:
            if proc.poll() is None:
                proc.terminate()
    assert "received SIGTERM, draining" in rest


def test_exec_runs_what_the_emulated_container_supports(lab: LabApi) -> None:
    pod = lab.kubectl("-n", NS, "get", "pods", "-l", "app=router", "-o", "name").stdout.split()[0]
    assert lab.kubectl("-n", NS, "exec", pod, "--", "true").returncode == 0
    refused = lab.kubectl("-n", NS, "exec", pod, "--", "ls", "/", check=False)
    assert refused.returncode == 126
    assert "only 'kill [-SIGNAL] 1', 'true' and 'false' run" in refused.stderr


def test_drain_evicts_within_the_disruption_budget(lab: LabApi, tmp_path: Path) -> None:
    lab.kubectl("-n", NS, "scale", "deployment/router", "--replicas=3")
    lab.kubectl("-n", NS, "rollout", "status", "deployment/router", "--timeout=30s")
    pdb = {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": "router", "namespace": NS},
        "spec": {"minAvailable": "100%", "selector": {"matchLabels": {"app": "router"}}},
    }
    path = tmp_path / "pdb.yaml"
    path.write_text(yaml.safe_dump(pdb))
    lab.kubectl("create", "-f", str(path))
    node = lab.kubectl(
        "-n", NS, "get", "pods", "-l", "app=router", "-o", "jsonpath={.items[0].spec.nodeName}"
    ).stdout
    # A budget that allows no disruption blocks the drain (kubectl retries until timeout).
    blocked = lab.kubectl("drain", node, "--ignore-daemonsets", "--timeout=3s", check=False)
    assert blocked.returncode != 0
    assert "Cannot evict pod as it would violate the pod's disruption budget" in blocked.stderr
    lab.kubectl(
        "-n",
        NS,
        "patch",
        "pdb",
        "router",
        "--type=merge",
        "-p",
        '{"spec":{"minAvailable":null,"maxUnavailable":1}}',
    )
    lab.wait_for(
        lambda: (
            lab.kubectl(
                "-n", NS, "get", "pdb", "router", "-o", "jsonpath={.status.disruptionsAllowed}"
            ).stdout
            == "1"
        )
    )
    drained = lab.kubectl("drain", node, "--ignore-daemonsets", "--timeout=60s")
    assert "evicted" in drained.stdout and f"node/{node} drained" in drained.stdout
    lab.kubectl("-n", NS, "rollout", "status", "deployment/router", "--timeout=60s")
    nodes = lab.kubectl(
        "-n", NS, "get", "pods", "-l", "app=router", "-o", "jsonpath={.items[*].spec.nodeName}"
    ).stdout.split()
    assert len(nodes) == 3 and node not in nodes  # cordoned: nothing lands there
    lab.kubectl("uncordon", node)
    lab.kubectl("-n", NS, "delete", "pdb", "router")
