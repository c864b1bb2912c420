"""The end-of-run summary and session capacity."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from analysis import load_runs
from analysis.errors import AnalysisError
from analysis.sessions import session_table
from analysis.summary import SUMMARY_COLUMNS, run_summary
from analysis.synthetic import DEMO_VENDORS, SyntheticSpec, usl
from tests.analysis_runs import write_spec


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    spec = SyntheticSpec(DEMO_VENDORS[1], replicas=(1, 2, 4), frame_sizes=("64", "IMIX"))
    return load_runs(write_spec(tmp_path_factory.mktemp("summary"), spec))


def test_run_summary_has_a_row_per_replica_count_and_frame_size(runs) -> None:  # type: ignore[no-untyped-def]
    (run_id,) = runs.manifests
    summary = run_summary(runs, run_id)
    assert list(summary.columns) == list(SUMMARY_COLUMNS)
    assert len(summary) == 3 * 2
    row = summary[(summary["replicas"] == 2) & (summary["frame_size"] == "64")].iloc[0]
    # a 64-byte frame takes 84 bytes of line time
    assert row["ndr_gbps"] == pytest.approx(row["ndr_mpps"] * 1e6 * 84 * 8 / 1e9)
    assert row["pdr_mpps"] >= row["ndr_mpps"]
    one = summary[(summary["replicas"] == 1) & (summary["frame_size"] == "64")].iloc[0]
    assert one["efficiency"] == 1.0
    assert row["efficiency"] == pytest.approx(row["ndr_mpps"] / (2 * one["ndr_mpps"]))
    assert (summary["p99_us_at_90"] > summary["p99_us_at_50"]).all()
    assert (summary["p50_us_at_50"] <= summary["p99_us_at_50"]).all()
    assert (
        not summary[["p50_us_at_50", "p99_us_at_90", "session_capacity_flows"]].isna().any().any()
    )


def test_run_summary_of_an_unknown_run_is_an_error(runs) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(AnalysisError, match="not among the loaded runs"):
        run_summary(runs, "no-such-run")


def test_session_capacity_per_replica_count(runs) -> None:  # type: ignore[no-untyped-def]
    table = session_table(runs)
    vendor = DEMO_VENDORS[1]
    assert list(table["replicas"]) == [1, 2, 4]
    expected = [
        int(usl(r, vendor.sessions_per_replica, vendor.sigma, vendor.kappa)) for r in (1, 2, 4)
    ]
    assert list(table["session_capacity_flows"]) == expected
    assert table["efficiency"].iloc[0] == 1.0
    assert np.allclose(
        table["per_replica_flows"], table["session_capacity_flows"] / table["replicas"]
    )


def test_a_run_without_results_summarises_to_an_empty_frame(tmp_path: Path) -> None:
    from bench.store import RunStore

    store = RunStore.create(tmp_path, "empty-run", {"cnf": {"name": "x"}})
    store.close()
    runs = load_runs(store.directory)
    assert run_summary(runs, "empty-run").empty
    assert session_table(runs).empty
