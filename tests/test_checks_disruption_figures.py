"""Disruption figures from continuous-traffic samples (RFC 6201 frame-loss method)."""

from __future__ import annotations

import pytest

from bench.checks.context import CheckContext, DisruptionLimits
from bench.checks.disruption import figures_from_samples, judge
from bench.checks.registry import Status
from traffic.model import TrafficSample

LOAD_PPS = 1_000_000.0


def sample(offered: int, lost: int = 0) -> TrafficSample:
    return TrafficSample(time_s=0.0, offered=offered, forwarded=offered - lost)


def test_outage_is_lost_frames_over_the_offered_rate() -> None:
    # 3 clean baseline samples of 0.1 s, then 0.25 s of total loss split over samples
    samples = [sample(100_000)] * 3 + [
        sample(100_000, lost=50_000),  # second half of this sample lost
        sample(100_000, lost=100_000),
        sample(100_000, lost=100_000),
        sample(100_000),
        sample(100_000),
    ]
    figures = figures_from_samples("pod-delete", samples, LOAD_PPS, replicas=2, baseline=3)
    assert figures.lost_frames == 250_000
    assert figures.outage_s == pytest.approx(0.25)
    # loss spans samples 4..6, each 0.1 s long in the generator's time base
    assert figures.loss_period_s == pytest.approx(0.3)
    assert figures.baseline_lost_frames == 0
    assert figures.offered == 800_000 and figures.samples == 8


def test_frames_in_flight_at_start_up_are_not_loss() -> None:
    # the sample in which traffic began flowing misses the frames still in flight; the
    # last sample, read after the traffic stopped, brings them back
    samples = [sample(0), sample(100_000, lost=64)] + [sample(100_000)] * 4
    samples.append(TrafficSample(0.0, 100_000, 100_064))
    figures = figures_from_samples(
        "pod-delete", samples, LOAD_PPS, replicas=2, baseline=3, start_up=2
    )
    assert figures.baseline_lost_frames == 0
    assert figures.lost_frames == 0 and figures.loss_period_s == 0.0
    # the same deficit after the start-up is loss like any other
    late = figures_from_samples(
        "pod-delete", samples, LOAD_PPS, replicas=2, baseline=3, start_up=0
    )
    assert late.baseline_lost_frames == 64


def test_no_loss_and_duplicates() -> None:
    samples = [sample(10_000), TrafficSample(0.0, 10_000, 10_002)]
    figures = figures_from_samples("scale-in", samples, LOAD_PPS, replicas=3)
    assert figures.lost_frames == 0 and figures.outage_s == 0.0
    assert figures.loss_period_s == 0.0
    with pytest.raises(ValueError, match="positive"):
        figures_from_samples("x", samples, 0.0, replicas=2)


def test_judged_against_the_tier_limits() -> None:
    samples = [sample(100_000), sample(100_000, lost=40_000), sample(100_000)]
    figures = figures_from_samples("rolling-update", samples, LOAD_PPS, replicas=2, baseline=1)
    within = judge(figures, CheckContext(limits=DisruptionLimits(50_000, 0.05)))
    assert within.status is Status.PASSED
    assert within.figures["lost_frames"] == 40_000
    over = judge(figures, CheckContext(limits=DisruptionLimits(10_000, 0.01)))
    assert over.status is Status.FAILED
    assert "lost frames 40000 > 10000" in over.message
    assert "outage 0.040 s > 0.01 s" in over.message
    assert judge(figures, CheckContext()).status is Status.PASSED  # no limits set
