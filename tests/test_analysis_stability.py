"""Stability flags: each names the point, the reason and what to try."""

from __future__ import annotations

from pathlib import Path

import pytest

from analysis import load_runs
from analysis.stability import stability_flags
from analysis.synthetic import DEMO_VENDORS, SyntheticSpec, synthetic_run, write_run
from bench.store import RunStore
from traffic.model import (
    Direction,
    LaneCounts,
    Point,
    StreamSpec,
    TrialKind,
    TrialResult,
    TrialSpec,
)
from traffic.units import parse_frame_size

SMALL = {"replicas": (1, 2, 4), "frame_sizes": ("64",)}


def _trial(point: Point, load_pps: float, loss: float) -> TrialResult:
    streams = StreamSpec(parse_frame_size(point.frame_size), point.flows, point.direction)
    offered = int(load_pps * 10 / 2)
    forwarded = int(offered * (1 - loss))
    lanes = (LaneCounts(0, 1, offered, forwarded), LaneCounts(1, 0, offered, forwarded))
    spec = TrialSpec(streams, load_pps, 10.0, TrialKind.SEARCH)
    return TrialResult(spec, 10.0, lanes, achieved_tx_pps=load_pps)


def test_a_clean_run_has_no_flags(tmp_path: Path) -> None:
    spec = SyntheticSpec(DEMO_VENDORS[0], **SMALL)  # type: ignore[arg-type]
    runs = load_runs(write_run(synthetic_run(spec), tmp_path, RunStore.create))
    assert stability_flags(runs).empty


def test_generator_short_of_its_intended_rate_is_flagged_at_that_point(tmp_path: Path) -> None:
    spec = SyntheticSpec(DEMO_VENDORS[0], generator_short_at=(4, "64"), **SMALL)  # type: ignore[arg-type]
    runs = load_runs(write_run(synthetic_run(spec), tmp_path, RunStore.create))
    flags = stability_flags(runs)
    short = flags[flags["flag"] == "generator-short"]
    assert list(short["replicas"]) == [4]
    assert short["value"].iloc[0] == pytest.approx(0.9, abs=1e-6)
    assert "sent less than intended" in short["reason"].iloc[0]
    assert "generator" in short["advice"].iloc[0]
    # the warnings of those trials are not reported a second time
    assert "generator-warnings" not in set(flags["flag"])


def test_spread_of_repeated_searches_is_flagged(tmp_path: Path) -> None:
    noisy_vendor = DEMO_VENDORS[2].__class__(**{**DEMO_VENDORS[2].__dict__, "noise_cv": 0.15})
    spec = SyntheticSpec(noisy_vendor, repeats=4, **SMALL)  # type: ignore[arg-type]
    runs = load_runs(write_run(synthetic_run(spec), tmp_path, RunStore.create))
    spread = stability_flags(runs, spread_cv=0.05).query("flag == 'spread'")
    assert not spread.empty
    assert (spread["value"] > 0.05).all()
    assert spread["reason"].str.contains("repeated searches disagree").all()
    assert stability_flags(runs, spread_cv=0.9).query("flag == 'spread'").empty


def test_loss_at_a_lower_load_than_a_loss_free_trial_is_noisy(tmp_path: Path) -> None:
    spec = SyntheticSpec(DEMO_VENDORS[0], repeats=1, **SMALL)  # type: ignore[arg-type]
    run_dir = write_run(synthetic_run(spec), tmp_path, RunStore.create)
    store = RunStore.open(run_dir)
    point = Point(2, "64", spec.flows, Direction.BIDIRECTIONAL)
    extra = {"search_id": "extra-search", "phase": "search"}
    store.append_trial(_trial(point, 10e6, 0.0), point, **extra)
    store.append_trial(_trial(point, 8e6, 0.01), point, **extra)  # lossy below a clean load
    near = Point(4, "64", spec.flows, Direction.BIDIRECTIONAL)
    store.append_trial(_trial(near, 10e6, 0.0), near, phase="search")  # no search id
    store.append_trial(_trial(near, 9.96e6, 0.001), near, phase="search")  # within resolution
    store.append_trial(
        TrialResult.invalid(_trial(point, 9e6, 0).spec, "port 1 link down"), point, **extra
    )
    store.close()
    flags = stability_flags(load_runs(run_dir))
    noisy = flags[flags["flag"] == "noisy"]
    assert list(noisy["replicas"]) == [2]
    assert noisy["value"].iloc[0] == pytest.approx(0.2)
    invalid = flags[flags["flag"] == "invalid-trials"]
    assert list(invalid["replicas"]) == [2]
    assert "port 1 link down" in invalid["reason"].iloc[0]
    assert (flags["advice"].str.len() > 0).all()
