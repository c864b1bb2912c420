"""What lifecycle events cost under traffic: frames lost and outage time.

Continuous traffic runs at a fraction of the measured NDR (so that the surviving replicas
can carry it) while one event happens to the CNF: a pod is deleted, the workload is
rolled out to a new revision, or it is scaled in by one replica.  The generator samples
its counters periodically; when the event is over and the data plane has settled, the
traffic stops and the counters are read after the receive delay, so every frame sent is
accounted for.

Figures, per event:

- ``lost_frames``: offered − forwarded over the whole continuous run;
- ``outage_s``: the frame-loss method of RFC 6201 §4 (reset time = frames lost /
  offered rate), the time the CNF would have forwarded nothing to lose as many frames;
- ``loss_period_s``: from the start of the first sample with loss to the end of the
  last, each sample's length taken as its offered count over the offered rate, so the
  figure is in the generator's time base (a lab's virtual time, or wall time).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from bench.checks.context import CheckContext
from bench.checks.kube import KubeView, pod_ready
from bench.checks.registry import (
    Category,
    Need,
    Outcome,
    Resource,
    Status,
    Weight,
    check,
    failed,
    passed,
    skipped,
)
from bench.checks.runtime import view
from bench.cluster import ClusterError
from bench.errors import BenchError
from traffic.model import TrafficSample

log = logging.getLogger(__name__)

NEEDS = (Need.CLUSTER, Need.GENERATOR)
LOSSY_SAMPLE_RATIO = 1e-4  # a sample losing more than this share of its frames is lossy
SETTLE_SAMPLES = 5  # loss-free samples after the event before the traffic stops
BASELINE_SAMPLES = 3
FLOWING_SAMPLES_MAX = 50


class DisruptionError(BenchError):
    """The disruption measurement could not be made (not a verdict on the CNF)."""


@dataclass(frozen=True)
class DisruptionFigures:
    event: str
    replicas: int
    load_pps: float
    offered: int
    forwarded: int
    lost_frames: int
    outage_s: float
    loss_period_s: float
    samples: int
    baseline_lost_frames: int

    def as_figures(self) -> dict[str, float]:
        out = asdict(self)
        out.pop("event")
        return {k: float(v) for k, v in out.items()}


def _lossy(sample: TrafficSample) -> bool:
    lost = sample.offered - sample.forwarded
    return sample.offered > 0 and lost / sample.offered > LOSSY_SAMPLE_RATIO


def figures_from_samples(
    event: str,
    samples: Sequence[TrafficSample],
    load_pps: float,
    replicas: int,
    *,
    baseline: int = 0,
    start_up: int = 0,
) -> DisruptionFigures:
    """Loss figures from the samples of one continuous run at `load_pps` (aggregate).

    The first `start_up` samples were taken while the traffic came up: counters read
    while frames are in flight miss those frames, so the sample in which the traffic
    began flowing shows a deficit that the last sample returns.  They count in the
    totals but not in the loss period.  The `baseline` samples after them were taken
    before the event; their loss is reported apart, and counts in ``lost_frames`` like
    every other frame.
    """
    if not load_pps > 0:
        raise ValueError(f"load must be positive, got {load_pps}")
    offered = sum(s.offered for s in samples)
    forwarded = sum(s.forwarded for s in samples)
    lost = max(0, offered - forwarded)

    # Sample boundaries in the generator's time base: each sample lasts offered / rate.
    start_s = 0.0
    first_loss_s: float | None = None
    last_loss_s = 0.0
    for index, s in enumerate(samples):
        length_s = s.offered / load_pps
        if index >= start_up and _lossy(s):
            first_loss_s = start_s if first_loss_s is None else first_loss_s
            last_loss_s = start_s + length_s
        start_s += length_s
    loss_period_s = 0.0 if first_loss_s is None else last_loss_s - first_loss_s
    baseline_lost = sum(
        max(0, s.offered - s.forwarded) for s in samples[start_up : start_up + baseline]
    )
    return DisruptionFigures(
        event=event,
        replicas=replicas,
        load_pps=load_pps,
        offered=offered,
        forwarded=forwarded,
        lost_frames=lost,
        outage_s=lost / load_pps,  # RFC 6201 §4: frame-loss method
        loss_period_s=loss_period_s,
        samples=len(samples),
        baseline_lost_frames=baseline_lost,
    )


def judge(figures: DisruptionFigures, ctx: CheckContext) -> Outcome:
    """The figures against the tier profile's disruption limits."""
    limits = ctx.limits
    text = (
        f"{figures.event} at {figures.replicas} replicas, {figures.load_pps / 1e6:.3f} Mpps: "
        f"{figures.lost_frames} frames lost, outage {figures.outage_s:.3f} s"
    )
    evidence = [
        f"offered {figures.offered}, forwarded {figures.forwarded} in {figures.samples} samples",
        f"loss period {figures.loss_period_s:.3f} s; {figures.baseline_lost_frames} frames "
        "lost before the event",
    ]
    over = []
    if limits.lost_frames_max is not None and figures.lost_frames > limits.lost_frames_max:
        over.append(f"lost frames {figures.lost_frames} > {limits.lost_frames_max}")
    if limits.outage_s_max is not None and figures.outage_s > limits.outage_s_max:
        over.append(f"outage {figures.outage_s:.3f} s > {limits.outage_s_max:g} s")
    if over:
        return failed(f"{text} ({'; '.join(over)})", [], evidence, **figures.as_figures())
    return passed(text, evidence, **figures.as_figures())


# --- running one event under traffic ----------------------------------------------------


def _sleep_interval(ctx: CheckContext) -> None:
    # The sample interval is in the generator's time base; a lab runs faster than wall
    # time, and its cluster driver knows by how much.
    scale = getattr(ctx.cluster, "time_scale", None) or ctx.time_scale
    time.sleep(ctx.sample_interval_s / scale)


def _wait_flowing(ctx: CheckContext, generator: Any, event: str) -> int:
    """Until a sample shows frames sent and received: ports take a moment to start, and
    an event before the traffic flows would cost nothing.  Returns the samples taken."""
    for taken in range(1, FLOWING_SAMPLES_MAX + 1):
        _sleep_interval(ctx)
        sample = generator.sample_continuous()
        if sample.offered > 0 and sample.forwarded > 0:
            return taken
    raise DisruptionError(f"{event}: no traffic came back through the CNF before the event")


def under_traffic(
    ctx: CheckContext,
    event: str,
    start_event: Callable[[], None],
    event_done: Callable[[], bool],
    replicas: int,
) -> DisruptionFigures:
    """Run continuous traffic, trigger the event, sample until it is over and settled."""
    assert ctx.ndr_pps is not None and ctx.generator is not None
    load_pps = ctx.load_fraction * ctx.ndr_pps
    generator = ctx.generator
    generator.start_continuous(ctx.streams, load_pps)
    try:
        start_up = _wait_flowing(ctx, generator, event)
        for _ in range(BASELINE_SAMPLES):
            _sleep_interval(ctx)
            generator.sample_continuous()
        log.info("%s: triggering at %d replicas under %.0f pps", event, replicas, load_pps)
        start_event()
        clean = 0
        elapsed_s = 0.0  # generator time since the event, from the frames offered
        while clean < SETTLE_SAMPLES:
            if elapsed_s > ctx.ready_timeout_s:
                raise DisruptionError(
                    f"{event}: the CNF did not settle within {ctx.ready_timeout_s:g} s"
                )
            _sleep_interval(ctx)
            sample = generator.sample_continuous()
            elapsed_s += sample.offered / load_pps
            done = event_done()
            clean = clean + 1 if (done and not _lossy(sample)) else 0
    finally:
        samples = generator.stop_continuous()
    return figures_from_samples(
        event, samples, load_pps, replicas, baseline=BASELINE_SAMPLES, start_up=start_up
    )


def _skip_if_single(_ctx: CheckContext, replicas: int) -> Outcome | None:
    if replicas < 2:
        return skipped(f"the workload runs {replicas} replica; disruption needs at least 2")
    return None


def _discard(fn: Callable[[], object]) -> Callable[[], None]:
    def call() -> None:
        fn()

    return call


def _workload(kube: KubeView) -> Resource:
    return Resource(kube.kind, kube.namespace, kube.name)


def _prepared(ctx: CheckContext) -> tuple[KubeView, int] | Outcome:
    kube = view(ctx)
    replicas = kube.spec_replicas()
    if (skip := _skip_if_single(ctx, replicas)) is not None:
        return skip
    if not kube.rolled_out():
        kube.wait_for(f"{replicas} ready replicas", kube.rolled_out, ctx.ready_timeout_s)
    return kube, replicas


def _measured(ctx: CheckContext, run: Callable[[], DisruptionFigures], kube: KubeView) -> Outcome:
    try:
        figures = run()
    except ClusterError as exc:
        return failed(f"the event did not complete: {exc}", [_workload(kube)])
    outcome = judge(figures, ctx)
    if outcome.status is Status.FAILED:
        return failed(outcome.message, [_workload(kube)], outcome.evidence, **outcome.figures)
    return outcome


@check(
    "disruption-pod-delete",
    title="Frames lost when a pod is deleted under traffic",
    category=Category.STATELESSNESS,
    weight=Weight.NORMAL,
    needs=NEEDS,
    overview="With continuous traffic at a fraction of the measured NDR, one ready pod is "
    "deleted; the frames lost and the outage time (RFC 6201 frame-loss method) until the "
    "workload is whole again are measured and held against the tier profile's limits.",
    rationale="A pod is lost at every node failure, eviction or drain; what that costs in "
    "dropped packets is what the network's users see.",
    remediation="Shorten the time flows stay pinned to a dead replica (faster flow "
    "re-steering, shorter readiness failure detection, graceful shutdown that drains).",
)
def disruption_pod_delete(ctx: CheckContext) -> Outcome:
    prepared = _prepared(ctx)
    if isinstance(prepared, Outcome):
        return prepared
    kube, replicas = prepared
    victim = kube.ready_pods()[0]["metadata"]["name"]

    def recovered() -> bool:
        pods = kube.pods()
        ready = [p for p in pods if pod_ready(p) and not p["metadata"].get("deletionTimestamp")]
        gone = all(p["metadata"]["name"] != victim for p in pods)
        return gone and len(ready) >= replicas

    def run() -> DisruptionFigures:
        return under_traffic(
            ctx, "pod deletion", lambda: kube.delete_pod(victim), recovered, replicas
        )

    return _measured(ctx, run, kube)


@check(
    "disruption-rolling-update",
    title="Frames lost in a rolling update under traffic",
    category=Category.INSTALLABILITY_AND_UPGRADEABILITY,
    weight=Weight.NORMAL,
    needs=NEEDS,
    overview="With continuous traffic at a fraction of the measured NDR, the workload is "
    "rolled out to a new revision; frames lost and outage time over the whole rollout are "
    "held against the tier profile's limits.",
    rationale="Upgrades are routine; a rolling update that drops traffic at every pod it "
    "replaces makes every upgrade a maintenance window.",
    remediation="Drain a pod before it stops (preStop hook, termination grace), surge new "
    "pods before removing old ones (maxSurge >= 1, maxUnavailable 0).",
)
def disruption_rolling_update(ctx: CheckContext) -> Outcome:
    prepared = _prepared(ctx)
    if isinstance(prepared, Outcome):
        return prepared
    kube, replicas = prepared

    def run() -> DisruptionFigures:
        return under_traffic(
            ctx,
            "rolling update",
            _discard(kube.restart_rollout),
            kube.settled,
            replicas,
        )

    return _measured(ctx, run, kube)


@check(
    "disruption-scale-in",
    title="Frames lost when scaling in under traffic",
    category=Category.SCALABILITY,
    weight=Weight.NORMAL,
    needs=NEEDS,
    overview="With continuous traffic at a fraction of the measured NDR, the workload is "
    "scaled in by one replica; frames lost and outage time are held against the tier "
    "profile's limits.  The replica count is restored afterwards.",
    rationale="Scaling in follows the load down; it must not cost the flows of the "
    "replica that goes away.",
    remediation="Move flows off a replica before it terminates (preStop drain, connection "
    "draining in the front) and keep the termination grace above the drain time.",
)
def disruption_scale_in(ctx: CheckContext) -> Outcome:
    prepared = _prepared(ctx)
    if isinstance(prepared, Outcome):
        return prepared
    kube, replicas = prepared

    def run() -> DisruptionFigures:
        return under_traffic(
            ctx, "scale-in", lambda: kube.scale(replicas - 1), kube.settled, replicas
        )

    try:
        return _measured(ctx, run, kube)
    finally:
        kube.scale_and_wait(replicas, ctx.ready_timeout_s)


DISRUPTION_CHECK_IDS = (
    "disruption-pod-delete",
    "disruption-rolling-update",
    "disruption-scale-in",
)
