"""Traffic through the whole lab follows the cluster: more Ready pods forward more, a
deleted pod forwards nothing until its replacement is Ready.

The lab runs as its supervisor process (`cnfbench lab` starts the same); the CNF is the
vpp-router chart installed by the cluster driver; the traffic goes through the lab's TRex
server with the real TRex client (in the driver's worker subprocess, its own session).
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client
from prometheus_client.parser import text_string_to_metric_families

from bench import labctl
from bench.cluster import Cluster, WorkloadRef
from bench.profiles import CnfProfile, load_profile
from tests.conftest import PROFILES
from traffic.model import Direction, StreamSpec, TrialResult, TrialSpec
from traffic.trex.driver import TrexConfig, TrexGenerator

TIME_SCALE = 10.0  # slow enough that a replacement pod (3 lab s) starts well after a trial
WARM_UP_S = 4.0  # the vpp-router model reaches full capacity 3 s after it is Ready
LOAD_PPS = 30e6  # aggregate, both directions: more than two replicas can forward
STREAMS = StreamSpec(64, 1024, Direction.BIDIRECTIONAL)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[labctl.LabHandle]:
    state = tmp_path_factory.mktemp("lab-state")
    with labctl.start_lab(state, time_scale=TIME_SCALE, replicas=0, noise=False) as handle:
        yield handle


@pytest.fixture(scope="module")
def cluster(lab: labctl.LabHandle) -> Iterator[Cluster]:
    with Cluster.from_lab(lab.endpoints) as c:
        assert c.time_scale == TIME_SCALE
        yield c


@pytest.fixture(scope="module")
def generator(lab: labctl.LabHandle) -> Iterator[TrexGenerator]:
    config = TrexConfig(
        sync_port=lab.endpoints.trex_sync_port, async_port=lab.endpoints.trex_async_port
    )
    with TrexGenerator(config) as gen:
        gen.open()
        yield gen


def _warm_up() -> None:
    time.sleep(WARM_UP_S / TIME_SCALE)


def _trial(generator: TrexGenerator) -> TrialResult:
    result = generator.run_trial(TrialSpec(STREAMS, LOAD_PPS, 1.0))
    assert result.valid, result.invalid_reason
    return result


def test_forwarding_follows_ready_pods(
    lab: labctl.LabHandle, cluster: Cluster, generator: TrexGenerator
) -> None:
    cnf: CnfProfile = load_profile(PROFILES / "cnfs" / "vpp-router.yaml", CnfProfile).profile
    installation, _ = cluster.install(cnf, PROFILES / "cnfs", timeout_s=120)
    ref: WorkloadRef = installation.workload
    status = lab.control("/status")
    assert len(status["replicas"]) == 1  # only the Ready pod forwards
    _warm_up()
    one = _trial(generator)

    scaled = cluster.scale(ref, 3, timeout_s=120)
    assert scaled.ready and scaled.time_to_ready_s is not None
    assert len(lab.control("/status")["replicas"]) == 3
    _warm_up()
    three = _trial(generator)
    # 64-byte frames: one replica forwards about 10.9 Mpps, three carry the 30 Mpps.
    assert three.forwarding_rate_pps > 2.5 * one.forwarding_rate_pps
    assert three.loss_ratio < 0.05 < one.loss_ratio

    # Delete a pod without waiting: its flows have nowhere to go until the front
    # rehashes them and the replacement is Ready.
    victim = next(p for p in cluster.pods(ref) if p.ready)
    client.CoreV1Api(cluster.api).delete_namespaced_pod(victim.name, ref.namespace)
    deadline = time.monotonic() + 10
    while f"{ref.namespace}/{victim.name}" in lab.control("/status")["replicas"]:
        assert time.monotonic() < deadline, "the deleted pod kept forwarding"
        time.sleep(0.005)
    during = _trial(generator)
    assert during.forwarding_rate_pps < 0.8 * three.forwarding_rate_pps

    recovered = cluster.wait_ready(ref, timeout_s=120)
    assert recovered.ready
    _warm_up()
    after = _trial(generator)
    assert after.forwarding_rate_pps > 0.95 * three.forwarding_rate_pps

    cluster.uninstall(installation)
    assert lab.control("/status")["replicas"] == []


def test_pod_metrics_agree_with_the_generator(
    lab: labctl.LabHandle, cluster: Cluster, generator: TrexGenerator
) -> None:
    cnf: CnfProfile = load_profile(PROFILES / "cnfs" / "vpp-router.yaml", CnfProfile).profile
    installation, _ = cluster.install(cnf, PROFILES / "cnfs", timeout_s=120)
    try:
        cluster.scale(installation.workload, 2, timeout_s=120)
        _warm_up()
        before = _scrape_total(cluster, installation.workload)
        result = _trial(generator)
        after = _scrape_total(cluster, installation.workload)
        # What the replicas transmitted is what the generator received.
        assert after - before == result.forwarded_count
    finally:
        cluster.uninstall(installation)


def _scrape_total(cluster: Cluster, ref: WorkloadRef) -> float:
    """Frames the workload's pods transmitted, from their Prometheus endpoints."""
    total = 0.0
    for pod in cluster.pods(ref):
        assert pod.metrics_url is not None
        text = urllib.request.urlopen(pod.metrics_url, timeout=5).read().decode()
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "cnf_tx_packets_total":
                    total += sample.value
    return total


def test_lab_status_publishes_the_kubeconfig(
    lab: labctl.LabHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    from bench.cli import main

    assert main(["lab", "status", "--state-dir", str(lab.state_dir), "--json"]) == 0
    kubernetes = json.loads(capsys.readouterr().out)["kubernetes"]
    assert kubernetes["url"].startswith("https://127.0.0.1:")
    assert Path(kubernetes["kubeconfig"]).is_file()
    assert kubernetes["nodes"] == 3 and kubernetes["vfs_per_node"] == 8
