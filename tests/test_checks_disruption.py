"""Disruption under traffic on the lab: the real TRex client drives continuous traffic
through the data-plane model while the lab's Kubernetes API deletes, rolls and scales
pods; the frames lost and the outage time must match the model's ground truth.

Ground truth, twice: every window of traffic the lab's TRex server forwards goes through
the data-plane model, which decides how many frames of it are lost, and the test adds
those up while the check runs; and analytically, a replica leaving the data plane takes
its share of the flows with it for the model's ``rehash_s`` (the share read from the
model's per-replica counters during a trial before the event), so ``share × load ×
rehash_s`` frames are lost and the outage (RFC 6201 frame-loss method) is ``share ×
rehash_s``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from bench.checks import measure_disruption
from bench.checks.context import CheckContext, DisruptionLimits
from bench.checks.disruption import DISRUPTION_CHECK_IDS
from bench.checks.kube import KubeView
from bench.checks.registry import CheckResult, Status
from lab.dataplane import DataPlane, LaneOutcome, load_vendor
from lab.supervisor import LabOptions, Supervisor
from traffic.model import Direction, StreamSpec, TrialSpec
from traffic.trex.driver import TrexConfig, TrexGenerator

TIME_SCALE = 200.0
VENDOR = "vpp-router"
FLOWS = 1024
STREAMS = StreamSpec(64, FLOWS, Direction.BIDIRECTIONAL)
LOAD_FRACTION = 0.5
TOLERANCE = 0.10
NO_LIMITS = DisruptionLimits()


class Rig:
    """A lab with one CNF Deployment in it and a TRex generator driving it."""

    def __init__(self, tmp: Path, replicas: int) -> None:
        self.supervisor = Supervisor(
            LabOptions(
                state_dir=tmp, replicas=0, noise=False, vendor=VENDOR, time_scale=TIME_SCALE
            )
        )
        state = self.supervisor.start()
        assert self.supervisor.ctx is not None
        self.plane: DataPlane = self.supervisor.ctx.dataplane
        api = config.new_client_from_config(config_file=state["kubernetes"]["kubeconfig"])
        client.CoreV1Api(api).create_namespace({"metadata": {"name": "cnf"}})
        client.AppsV1Api(api).create_namespaced_deployment("cnf", _deployment(replicas))
        self.kube = KubeView(api, "cnf", "Deployment", "router", time_scale=TIME_SCALE)
        self.kube.wait_for("rolled out", self.kube.rolled_out, 3000)
        self.kube.sleep(load_vendor(VENDOR).warmup_s + 1.0)  # new replicas warm up
        self.generator = TrexGenerator(
            TrexConfig(
                sync_port=state["trex"]["sync_port"], async_port=state["trex"]["async_port"]
            )
        )
        self.generator.open()
        self.ndr_pps = self.plane.ground_truth(64, FLOWS, replicas, True)
        self.model_lost = 0  # frames the model lost in the windows it forwarded
        forward = self.plane.forward

        def counted(*args: Any, **kw: Any) -> list[LaneOutcome]:
            outcomes = forward(*args, **kw)
            self.model_lost += sum(o.offered - o.forwarded for o in outcomes)
            return outcomes

        self.plane.forward = counted  # type: ignore[method-assign]

    def context(self, limits: DisruptionLimits = NO_LIMITS) -> CheckContext:
        return CheckContext(
            cluster=self.kube,
            namespace="cnf",
            workload_name="router",
            generator=self.generator,
            streams=STREAMS,
            ndr_pps=self.ndr_pps,
            load_fraction=LOAD_FRACTION,
            sample_interval_s=1.0,
            time_scale=TIME_SCALE,
            limits=limits,
        )

    def shares(self) -> dict[str, float]:
        """Each replica's share of the traffic, from the model's counters over a trial."""
        before = self.plane.replica_counters()
        result = self.generator.run_trial(TrialSpec(STREAMS, 1e6, 2.0))
        assert result.valid and result.loss_ratio == 0.0
        after = self.plane.replica_counters()
        got = {k: after[k].rx_packets - before[k].rx_packets for k in after if k in before}
        total = sum(got.values())
        return {k: v / total for k, v in got.items()}

    def close(self) -> None:
        self.generator.close()
        self.supervisor.shutdown()


def _deployment(replicas: int) -> dict[str, object]:
    probe = {"tcpSocket": {"port": 9100}, "periodSeconds": 1}
    container = {
        "name": "vpp",
        "image": f"registry.lab.local/cnfbench/{VENDOR}:24.02",
        "readinessProbe": probe,
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "router"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "router"}},
            "template": {
                "metadata": {"labels": {"app": "router"}},
                "spec": {"containers": [container]},
            },
        },
    }


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    rig = Rig(tmp_path, replicas=2)
    yield rig
    rig.close()


def measure(rig: Rig, check_id: str, limits: DisruptionLimits = NO_LIMITS) -> CheckResult:
    rig.model_lost = 0
    (result,) = measure_disruption(rig.context(limits), only=[check_id])
    return result


def assert_matches_ground_truth(rig: Rig, result: CheckResult, shares: dict[str, float]) -> None:
    gone = set(shares) - set(rig.plane.replica_ids())
    assert len(gone) == 1, gone
    share = shares[gone.pop()]
    load_pps = LOAD_FRACTION * rig.ndr_pps
    rehash_s = load_vendor(VENDOR).rehash_s

    lost, outage_s = result.figures["lost_frames"], result.figures["outage_s"]
    truth = rig.model_lost
    assert truth > 0, "the event cost the model no frames: it did not happen under traffic"
    assert abs(lost - truth) / truth <= TOLERANCE, (lost, truth)
    assert abs(outage_s - truth / load_pps) / (truth / load_pps) <= TOLERANCE
    # the analytic ground truth: the replica's share of the load, for rehash_s
    expected_lost = share * load_pps * rehash_s
    assert abs(lost - expected_lost) / expected_lost <= TOLERANCE, (lost, expected_lost)
    assert abs(outage_s - share * rehash_s) / (share * rehash_s) <= TOLERANCE
    assert result.figures["load_pps"] == pytest.approx(load_pps)
    assert result.figures["baseline_lost_frames"] <= 10  # rounding in the model, not loss
    # every frame sent is accounted for: the figures add up
    assert result.figures["offered"] - result.figures["forwarded"] == lost


def test_pod_deletion_loss_matches_the_model(rig: Rig) -> None:
    shares = rig.shares()
    started = time.monotonic()
    result = measure(rig, "disruption-pod-delete")
    assert result.status is Status.PASSED, result.message
    assert_matches_ground_truth(rig, result, shares)
    assert time.monotonic() - started < 20.0
    assert len(rig.kube.ready_pods()) == 2  # the workload recovered


def test_scale_in_loss_matches_the_model_and_restores(rig: Rig) -> None:
    shares = rig.shares()
    result = measure(rig, "disruption-scale-in")
    assert result.status is Status.PASSED, result.message
    assert_matches_ground_truth(rig, result, shares)
    assert rig.kube.spec_replicas() == 2 and len(rig.kube.ready_pods()) == 2


def test_rolling_update_is_judged_against_the_limits(rig: Rig) -> None:
    rehash_s = load_vendor(VENDOR).rehash_s
    limits = DisruptionLimits(lost_frames_max=1000, outage_s_max=rehash_s / 100)
    result = measure(rig, "disruption-rolling-update", limits)
    lost, truth = result.figures["lost_frames"], rig.model_lost
    assert abs(lost - truth) <= TOLERANCE * max(truth, 1000)
    # each old pod takes at most half of the flows with it when it leaves (two replicas)
    assert result.figures["outage_s"] <= rehash_s * (1 + TOLERANCE)
    if truth > 1000:
        assert result.status is Status.FAILED
        assert "lost frames" in result.message and "outage" in result.message
        assert result.impacted[0].name == "router"
        assert result.to_record()["remediation"]
    else:  # the lab applied the old pods' removal after the rollout finished
        assert result.status is Status.PASSED
    assert rig.kube.rolled_out()


def test_single_replica_and_missing_generator_are_skipped(rig: Rig) -> None:
    rig.kube.scale_and_wait(1, 3000)
    (result,) = measure_disruption(rig.context(), only=["disruption-pod-delete"])
    assert result.status is Status.SKIPPED and "at least 2" in result.message
    no_generator = CheckContext(cluster=rig.kube, namespace="cnf", workload_name="router")
    results = measure_disruption(no_generator)
    assert [r.id for r in results] == list(DISRUPTION_CHECK_IDS)
    assert all(r.status is Status.SKIPPED and "generator" in r.message for r in results)
