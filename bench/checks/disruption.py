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

from bench.checks.context import CheckContext
from bench.checks.registry import Need, Outcome, failed, passed, skipped
from bench.errors import BenchError
from traffic.model import TrafficSample

log = logging.getLogger(__name__)

NEEDS = (Need.CLUSTER, Need.GENERATOR)
LOSSY_SAMPLE_RATIO = 1e-4  # a sample losing more than this share of its frames is lossy
SETTLE_SAMPLES = 5  # loss-free samples after the event before the traffic stops
BASELINE_SAMPLES = 3
MAX_SAMPLES_AFTER_EVENT = 400


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


def figures_from_samples(
    event: str,
    samples: Sequence[TrafficSample],
    load_pps: float,
    replicas: int,
    baseline: int = 0,
) -> DisruptionFigures:
    """Loss figures from the samples of one continuous run at `load_pps` (aggregate).

    The first `baseline` samples were taken before the event; their loss is reported
    apart, and counts in ``lost_frames`` like every other frame.
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
    for s in samples:
        length_s = s.offered / load_pps
        if s.offered > 0 and (s.offered - s.forwarded) / s.offered > LOSSY_SAMPLE_RATIO:
            first_loss_s = start_s if first_loss_s is None else first_loss_s
            last_loss_s = start_s + length_s
        start_s += length_s
    loss_period_s = 0.0 if first_loss_s is None else last_loss_s - first_loss_s
    baseline_lost = sum(max(0, s.offered - s.forwarded) for s in samples[:baseline])
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
    # The sample interval is in the generator's time base; a lab runs faster than wall time.
    time.sleep(ctx.sample_interval_s / ctx.time_scale)


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
        for _ in range(BASELINE_SAMPLES):
            _sleep_interval(ctx)
            generator.sample_continuous()
        log.info("%s: triggering at %d replicas under %.0f pps", event, replicas, load_pps)
        start_event()
        clean = 0
        for _ in range(MAX_SAMPLES_AFTER_EVENT):
            _sleep_interval(ctx)
            sample = generator.sample_continuous()
            lossy = sample.offered > 0 and sample.offered - sample.forwarded > 0
            done = event_done()
            clean = clean + 1 if (done and not lossy) else 0
            if clean >= SETTLE_SAMPLES:
                break
        else:
            raise DisruptionError(
                f"{event}: the CNF did not settle within {MAX_SAMPLES_AFTER_EVENT} samples"
            )
    finally:
        samples = generator.stop_continuous()
    return figures_from_samples(event, samples, load_pps, replicas, BASELINE_SAMPLES)


def _skip_if_single(ctx: CheckContext, replicas: int) -> Outcome | None:
    if replicas < 2:
        return skipped(f"the workload runs {replicas} replica; disruption needs at least 2")
    return None
