"""Analysis, annex and notebook on runs the main job measured on the embedded lab."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from analysis import load_runs
from analysis.annex import AnnexVerifyError, verify_annex
from analysis.scaling import (
    FitRefused,
    expected_imbalance,
    fit_scaling,
    scaling_fits,
    throughput_table,
)
from analysis.summary import run_summary
from lab.dataplane import load_vendor
from tests.analysis_runs import flip_byte

REPO = Path(__file__).resolve().parent.parent
PROFILES = REPO / "profiles"
NOTEBOOK = REPO / "notebooks" / "compare_vendors.ipynb"

SMALL_TRAFFIC = """\
schema_version: 1
kind: traffic
name: analysis-small
description: One frame size and short latency trials.
frame_sizes: [64]
flow_counts: [10000]
directions: [bidir]
search: {method: mlrsearch, preset: quick, warm_start: true, min_load: 10kpps}
latency: {rate: 1kpps, loads: [10%, 50%, 90%], trial_duration: 2s}
sessions: {flow_counts: [1000, 100000], hold_fraction: 90%}
learning_frames: true
rx_delay: 100ms
"""


def _small_run_profile(directory: Path, cnf: str) -> Path:
    (directory / "traffic.yaml").write_text(SMALL_TRAFFIC)
    path = directory / f"run-{cnf}.yaml"
    path.write_text(
        "schema_version: 1\nkind: run\n"
        f"name: {cnf}-small\n"
        f"cnf: {PROFILES / 'cnfs' / f'{cnf}.yaml'}\n"
        f"testbed: {PROFILES / 'testbeds' / 'lab.yaml'}\n"
        f"traffic: {directory / 'traffic.yaml'}\n"
        f"tiers: {PROFILES / 'tiers' / 'default.yaml'}\n"
        "time_budget: 10min\nresults_dir: results\nchecks: false\n"
    )
    return path


@pytest.fixture(scope="module")
def lab_results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled demo (vpp-router, with its annex) and short stateful-firewall and cgnat
    runs: the three demo vendors, as the notebook compares them."""
    work = tmp_path_factory.mktemp("lab-runs")
    results = work / "results"
    commands = [
        [sys.executable, "-m", "bench.cli", "-q", "run", "--results-dir", str(results)],
        [sys.executable, "-m", "bench.cli", "-q", "run",
         str(_small_run_profile(work, "stateful-firewall")), "--results-dir", str(results)],
        [sys.executable, "-m", "bench.cli", "-q", "run",
         str(_small_run_profile(work, "cgnat")), "--results-dir", str(results)],
    ]  # fmt: skip
    procs = [
        subprocess.Popen(c, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for c in commands
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, f"{proc.args}: {err[-2000:]}"
        assert "annex:" in out
    return results


def _run_dir(results: Path, cnf: str) -> Path:
    runs = load_runs(results)
    (run_id,) = runs.runs.loc[runs.runs["cnf"] == cnf, "run_id"]
    return runs.directories[run_id]


def test_the_main_job_s_annex_verifies_and_fails_after_one_changed_byte(
    lab_results: Path, tmp_path: Path
) -> None:
    run_dir = shutil.copytree(_run_dir(lab_results, "vpp-router"), tmp_path / "run")
    summary = json.loads((run_dir / "annex" / "summary.json").read_text())
    assert summary["kind"] == "run"
    assert summary["runs"][0]["testbed"]["fingerprint_sha256"]
    assert summary["results"]["latency"]
    assert {row["source"] for row in summary["results"]["latency"]} == {"hdr"}
    assert verify_annex(run_dir / "annex").runs == 1
    flip_byte(run_dir / "trials.parquet")
    with pytest.raises(AnnexVerifyError, match=r"trials\.parquet: sha256 differs"):
        verify_annex(run_dir / "annex")


def test_lab_throughput_and_efficiency_match_the_lab_ground_truth(lab_results: Path) -> None:
    for cnf in ("vpp-router", "stateful-firewall"):
        model = load_vendor(cnf)
        runs = load_runs(_run_dir(lab_results, cnf))
        table = throughput_table(runs)
        row = table[(table["frame_size"] == "64")].set_index("replicas")
        flows = int(row["flows"].iloc[0])
        one = model.replica_capacity_pps(64, flows, 1)
        for replicas in row.index:
            capacity = replicas * model.replica_capacity_pps(64, flows / replicas, replicas)
            # flows hash unevenly: the busiest replica, not the mean, caps the aggregate
            floor = capacity / expected_imbalance(flows, replicas)
            ndr = row.loc[replicas, "ndr_pps"]
            assert 0.97 * floor <= ndr <= 1.01 * capacity, (cnf, replicas)
            efficiency = row.loc[replicas, "efficiency_ndr"]
            assert (
                0.97 * floor / (replicas * one) <= efficiency <= 1.02 * capacity / (replicas * one)
            )


def test_lab_fits_state_their_verdicts(lab_results: Path) -> None:
    runs = load_runs(_run_dir(lab_results, "stateful-firewall"))
    verdicts = {(v.model, v.goal): v for v in scaling_fits(runs, bootstrap_samples=300)}
    usl = verdicts[("usl", "ndr")]
    # the bundled CNF profiles measure 1 to 4 replicas: four points, three parameters
    assert usl.verdict == "trustworthy", usl.reasons
    assert usl.fit is not None and usl.fit.dof == 1
    model = load_vendor("stateful-firewall")
    # the model's contention and crosstalk lie within the fit's 95 % intervals
    low, high = usl.fit.ci["sigma"]
    assert low <= model.usl_sigma <= high
    low, high = usl.fit.ci["kappa"]
    assert low <= model.usl_kappa <= high
    amdahl = verdicts[("amdahl", "ndr")]
    assert amdahl.fit is not None
    # Amdahl's σ absorbs the crosstalk: between the true σ and σ + κ·R(R−1)/(R−1) at R = 4
    assert (
        model.usl_sigma * 0.5 <= amdahl.fit.sigma <= model.usl_sigma + 4 * model.usl_kappa + 0.02
    )
    table = throughput_table(runs)
    with pytest.raises(FitRefused, match="at least 3"):
        fit_scaling(table["replicas"][:2], table["ndr_pps"][:2])
    summary = run_summary(runs, next(iter(runs.manifests)))
    assert list(summary["replicas"]) == [1, 2, 3, 4]
    assert summary["session_capacity_flows"].notna().all()


def test_notebook_runs_on_lab_results(lab_results: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(os.environ, "CNFBENCH_RESULTS", str(lab_results))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3").execute()
    outputs: list[Any] = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "\n".join(
        str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", "")) for o in outputs
    )
    assert "fdio-like" in text and "acme-fw" in text and "natco" in text
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 4
