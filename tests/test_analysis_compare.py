"""The comparison frame across vendors, testbed refusal, and the compare command."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from analysis import load_runs
from analysis.compare import (
    MismatchedTestbeds,
    comparison_frame,
    mismatched_testbeds,
    side_by_side,
)
from analysis.synthetic import DEMO_VENDORS, SyntheticSpec
from tests.analysis_runs import write_demo_runs, write_spec

SMALL: dict[str, Any] = {"replicas": (1, 2, 4), "frame_sizes": ("64",)}


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("compare")
    write_demo_runs(root, **SMALL)
    return root


def test_ratios_to_the_baseline_match_the_true_capacity_ratios(demo_root: Path) -> None:
    runs = load_runs(demo_root)
    frame = comparison_frame(runs, baseline="acme-fw")
    ndr = frame[frame["goal"] == "ndr"]
    assert set(ndr["vendor"]) == {v.vendor for v in DEMO_VENDORS}
    assert len(ndr) == 3 * 3  # vendors × replica counts
    base = next(v for v in DEMO_VENDORS if v.vendor == "acme-fw")
    for vendor in DEMO_VENDORS:
        for replicas in (1, 2, 4):
            row = ndr[(ndr["vendor"] == vendor.vendor) & (ndr["replicas"] == replicas)].iloc[0]
            truth = vendor.capacity_pps(replicas, "64") / base.capacity_pps(replicas, "64")
            assert row["ratio_to_baseline"] == pytest.approx(truth, rel=0.05)
            assert row["ratio_lo"] <= row["ratio_to_baseline"] <= row["ratio_hi"]
            assert row["share_of_line"] == pytest.approx(
                row["throughput_pps"] / row["line_rate_pps"]
            )
    baseline_rows = ndr[ndr["vendor"] == "acme-fw"]
    assert baseline_rows["ratio_to_baseline"].eq(1.0).all()
    wide = side_by_side(frame)
    assert len(wide) == 3
    assert sum(c.startswith("NDR ") for c in wide.columns) == 3


def test_unknown_baseline_is_an_error(demo_root: Path) -> None:
    from analysis.errors import AnalysisError

    with pytest.raises(AnalysisError, match="baseline vendor 'nobody'"):
        comparison_frame(load_runs(demo_root), baseline="nobody")


def test_runs_of_different_testbeds_are_refused_unless_forced(tmp_path: Path) -> None:
    write_spec(tmp_path, SyntheticSpec(DEMO_VENDORS[0], **SMALL))
    other = SyntheticSpec(
        DEMO_VENDORS[1], nic_model="Mellanox ConnectX-6", port_speed_bps=100e9, **SMALL
    )
    write_spec(tmp_path, other)
    runs = load_runs(tmp_path)
    mismatches = mismatched_testbeds(runs)
    assert len(mismatches) == 1
    assert "nic_model" in mismatches[0] and "link_speed_bps" in mismatches[0]
    with pytest.raises(MismatchedTestbeds, match="--force"):
        comparison_frame(runs)
    frame = comparison_frame(runs, force=True)
    # normalised per testbed: a share of each run's own line rate
    fast = frame[(frame["vendor"] == "acme-fw") & (frame["goal"] == "ndr")]
    assert (fast["line_rate_pps"] > 2.9e8).all()


def test_compare_command_prints_a_side_by_side_table(
    demo_root: Path, cnfbench: Callable[..., Any]
) -> None:
    result = cnfbench("compare", str(demo_root))
    assert result.returncode == 0, result.stderr
    assert "NDR / PDR (Mpps) per point" in result.stdout
    for vendor in DEMO_VENDORS:
        assert vendor.vendor in result.stdout


def test_compare_command_refuses_mismatched_testbeds(
    tmp_path: Path, cnfbench: Callable[..., Any]
) -> None:
    write_spec(tmp_path, SyntheticSpec(DEMO_VENDORS[0], repeats=1, **SMALL))
    write_spec(tmp_path, SyntheticSpec(DEMO_VENDORS[1], repeats=1, nic_model="other", **SMALL))
    refused = cnfbench("compare", str(tmp_path))
    assert refused.returncode == 2
    assert "refusing to compare runs of different testbeds" in refused.stderr
    assert "nic_model" in refused.stderr
    forced = cnfbench("compare", "--force", str(tmp_path))
    assert forced.returncode == 0, forced.stderr


def test_without_fingerprints_runs_compare_by_testbed_name(tmp_path: Path) -> None:
    from analysis.synthetic import synthetic_run, write_run
    from bench.store import RunStore

    for vendor, testbed in (
        (DEMO_VENDORS[0], "lab"),
        (DEMO_VENDORS[1], "lab"),
        (DEMO_VENDORS[2], "rack-7"),
    ):
        run = synthetic_run(SyntheticSpec(vendor, repeats=1, **SMALL))
        run.manifest["testbed"] = {"name": testbed}
        write_run(run, tmp_path / testbed, RunStore.create)
    assert mismatched_testbeds(load_runs(tmp_path / "lab")) == []
    (problem,) = mismatched_testbeds(load_runs([tmp_path / "lab", tmp_path / "rack-7"]))[-1:]
    assert "fingerprint is missing" in problem and "'rack-7'" in problem
