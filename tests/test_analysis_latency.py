"""Latency percentiles from merged HDR histograms, latency against load, tail growth."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from analysis import load_runs
from analysis.latency import (
    histogram_stats_us,
    latency_at,
    latency_table,
    merge_histograms,
    tail_growth,
)
from analysis.synthetic import (
    DEMO_VENDORS,
    SyntheticSpec,
    encode_latencies_us,
    synthetic_run,
    write_run,
)
from bench.store import RunStore
from tests.analysis_runs import write_spec


def test_percentiles_of_merged_histograms_are_those_of_all_samples() -> None:
    rng = np.random.default_rng(7)
    west = rng.exponential(20.0, 5000) + 5
    east = rng.lognormal(4.0, 0.5, 3000)  # a slower direction
    merged = merge_histograms([encode_latencies_us(west), encode_latencies_us(east)])
    assert merged is not None
    stats = histogram_stats_us(merged)
    both = np.rint(np.concatenate([west, east]))
    assert stats["samples"] == both.size
    for name, q in (("p50_us", 50), ("p90_us", 90), ("p99_us", 99), ("p999_us", 99.9)):
        # HDR keeps 3 significant digits; the rest is integer rounding of the samples
        assert stats[name] == pytest.approx(np.percentile(both, q), rel=2e-3, abs=1.0)
    assert stats["mean_us"] == pytest.approx(both.mean(), rel=1e-3)
    assert stats["max_us"] == pytest.approx(both.max(), rel=1e-3)
    # averaging the two directions' p99 would be wrong: the merged p99 is not the mean
    mean_of_p99 = (np.percentile(west, 99) + np.percentile(east, 99)) / 2
    assert abs(stats["p99_us"] - mean_of_p99) > 5


def test_percentiles_and_mean_agree_with_the_library_s_own() -> None:
    rng = np.random.default_rng(3)
    for size in (1, 7, 5000):
        values = np.concatenate([rng.lognormal(4, 1.5, size), rng.exponential(5000, size)])
        hist = merge_histograms([encode_latencies_us(values)])
        assert hist is not None
        stats = histogram_stats_us(hist)
        for name, q in (("p50_us", 50), ("p90_us", 90), ("p99_us", 99), ("p999_us", 99.9)):
            assert stats[name] == hist.get_value_at_percentile(q)
        assert stats["mean_us"] == pytest.approx(hist.get_mean_value())
        assert stats["min_us"] == hist.get_min_value()


def test_merge_of_nothing_is_none() -> None:
    assert merge_histograms([]) is None


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("latency")
    spec = SyntheticSpec(DEMO_VENDORS[0], replicas=(1, 2, 4), frame_sizes=("64",))
    return load_runs(write_spec(root, spec))


def test_latency_table_gives_percentiles_per_point_and_load(runs) -> None:  # type: ignore[no-untyped-def]
    table = latency_table(runs)
    assert len(table) == 3 * 4  # replica counts × loads
    assert set(table["source"]) == {"hdr"}
    assert set(table["load_label"]) == {"10%", "50%", "90%", "NDR"}
    assert table["load_fraction_ndr"].round(3).isin([0.1, 0.5, 0.9, 1.0]).all()
    # two directions of 1500 samples each were merged
    assert (table["samples"] == 3000).all()
    assert (table["p50_us"] <= table["p99_us"]).all()
    assert (table["p99_us"] <= table["p999_us"]).all()

    stored = runs.points[runs.points["measure"] == "latency"].iloc[0]
    hist = merge_histograms([stored["latency_hdrh"]])
    assert hist is not None
    row = table[
        (table["replicas"] == stored["replicas"]) & (table["load_label"] == stored["load_label"])
    ].iloc[0]
    assert row["p99_us"] == histogram_stats_us(hist)["p99_us"]


def test_latency_grows_with_load_and_the_tail_is_flagged_near_ndr(runs) -> None:  # type: ignore[no-untyped-def]
    table = latency_table(runs)
    for _, part in table.groupby("replicas"):
        ordered = part.sort_values("load_pps")
        assert ordered["p99_us"].iloc[-1] > ordered["p99_us"].iloc[0]
    growth = tail_growth(table)
    assert len(growth) == 3
    assert growth["tail_grows"].all()
    assert (growth["p99_ratio"] > 3).all()
    at_half = latency_at(table, 0.5)
    assert len(at_half) == 3
    assert set(at_half["load_label"]) == {"50%"}


def test_latency_falls_back_to_latency_trials_without_latency_records(tmp_path: Path) -> None:
    spec = SyntheticSpec(DEMO_VENDORS[0], replicas=(1, 2), frame_sizes=("64",), repeats=1)
    run = synthetic_run(spec)
    run.records = [
        (kind, body)
        for kind, body in run.records
        if not (kind == "point" and body.get("measure") == "latency")
    ]
    runs = load_runs(write_run(run, tmp_path, RunStore.create))
    table = latency_table(runs)
    assert len(table) == 2 * 4
    assert set(table["source"]) == {"hdr"}
    trial = runs.trials[runs.trials["kind"] == "latency"].iloc[0]
    lanes = json.loads(trial["hdrh"])
    assert set(lanes) == {"0->1", "1->0"}
    merged = merge_histograms(lanes.values())
    assert merged is not None
    first = table[np.isclose(table["load_pps"], trial["intended_load_pps"])].iloc[0]
    assert first["p99_us"] == histogram_stats_us(merged)["p99_us"]


def test_latency_records_without_histograms_use_their_trials_histograms(tmp_path: Path) -> None:
    # the sweep stores the generator's summary in the latency record and the HDR
    # histograms with the latency trials (phase "latency-<load>")
    spec = SyntheticSpec(DEMO_VENDORS[0], replicas=(1, 2), frame_sizes=("64",), repeats=1)
    full = load_runs(write_run(synthetic_run(spec), tmp_path / "full", RunStore.create))
    run = synthetic_run(spec)
    for kind, body in run.records:
        if kind == "point" and body.get("measure") == "latency":
            body["latency"] = {k: v for k, v in body["latency"].items() if k != "hdrh"}
    stripped = load_runs(write_run(run, tmp_path / "stripped", RunStore.create))
    assert "latency_hdrh" not in stripped.points.columns
    a, b = latency_table(full), latency_table(stripped)
    assert set(b["source"]) == {"hdr"}
    for column in ("p50_us", "p99_us", "p999_us", "samples"):
        assert list(a[column]) == list(b[column])


def test_without_any_histogram_the_generator_s_percentiles_are_used(tmp_path: Path) -> None:
    spec = SyntheticSpec(DEMO_VENDORS[0], replicas=(1, 2), frame_sizes=("64",), repeats=1)
    run = synthetic_run(spec)
    for kind, body in run.records:
        if kind == "point" and body.get("measure") == "latency":
            body["latency"] = {k: v for k, v in body["latency"].items() if k != "hdrh"}
        elif kind == "trial" and body["result"].latency:
            lanes = {k: replace(v, hdrh=None) for k, v in body["result"].latency.items()}
            body["result"] = replace(body["result"], latency=lanes)
    runs = load_runs(write_run(run, tmp_path, RunStore.create))
    table = latency_table(runs)
    assert set(table["source"]) == {"summary"}
    records = runs.points[runs.points["measure"] == "latency"]
    for _, record in records.iterrows():
        row = table[
            (table["replicas"] == record["replicas"])
            & (table["load_label"] == record["load_label"])
        ].iloc[0]
        assert row["p99_us"] == record["latency_p99_us"]
        assert row["min_us"] == record["latency_min_us"]
