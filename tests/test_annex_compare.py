"""The comparison annex of several runs."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from analysis.annex import AnnexParameters, AnnexVerifyError, render_annex, verify_annex
from analysis.compare import MismatchedTestbeds
from analysis.synthetic import DEMO_VENDORS, SyntheticSpec
from bench.schemas import validate
from tests.analysis_runs import flip_byte, write_demo_runs, write_spec

SMALL: dict[str, Any] = {"replicas": (1, 2, 4, 8), "frame_sizes": ("64",), "repeats": 2}


def test_comparison_annex_renders_and_verifies(tmp_path: Path) -> None:
    runs = write_demo_runs(tmp_path / "results", **SMALL)
    out = tmp_path / "comparison"
    annex = render_annex(runs, out, AnnexParameters(bootstrap_samples=100))
    summary = json.loads((out / "summary.json").read_text())
    validate("annex", summary, "summary.json")
    assert summary["kind"] == "comparison"
    assert {r["cnf"]["vendor"] for r in summary["runs"]} == {v.vendor for v in DEMO_VENDORS}
    comparison = summary["results"]["comparison"]
    assert {row["baseline_vendor"] for row in comparison} == {"acme-fw"}
    assert len(summary["data_files"]) == 3 * 4
    assert all(entry["path"].startswith("../results/") for entry in summary["data_files"])
    page = (out / "index.html").read_text()
    assert "Vendor comparison" in page
    assert annex.files["pdf"].read_bytes()[:5] == b"%PDF-"
    assert verify_annex(out).runs == 3

    # moving annex and results together keeps the relative paths valid
    moved = tmp_path / "moved"
    shutil.copytree(tmp_path, moved, ignore=shutil.ignore_patterns("moved"))
    verify_annex(moved / "comparison")
    flip_byte(moved / "results" / runs[1].name / "points.parquet")
    with pytest.raises(AnnexVerifyError, match=r"points\.parquet: sha256 differs"):
        verify_annex(moved / "comparison")


def test_comparison_of_different_testbeds_needs_force(tmp_path: Path) -> None:
    a = write_spec(tmp_path, SyntheticSpec(DEMO_VENDORS[0], **SMALL))
    b = write_spec(tmp_path, SyntheticSpec(DEMO_VENDORS[1], nic_model="other NIC", **SMALL))
    with pytest.raises(MismatchedTestbeds):
        render_annex([a, b], tmp_path / "cmp", AnnexParameters(bootstrap_samples=50))
    assert not (tmp_path / "cmp").exists()  # nothing half-written
    forced = AnnexParameters(bootstrap_samples=50, force=True)
    render_annex([a, b], tmp_path / "cmp", forced)
    summary = json.loads((tmp_path / "cmp" / "summary.json").read_text())
    assert summary["results"]["testbed_mismatches"]
    assert "Testbeds differ" in (tmp_path / "cmp" / "index.html").read_text()
    verify_annex(tmp_path / "cmp")


def test_compare_command_renders_a_comparison_annex(
    tmp_path: Path, cnfbench: Callable[..., Any]
) -> None:
    write_demo_runs(tmp_path / "results", **SMALL)
    result = cnfbench("compare", str(tmp_path / "results"), "--annex", str(tmp_path / "cmp"))
    assert result.returncode == 0, result.stderr
    assert str(tmp_path / "cmp" / "index.html") in result.stdout
    verified = cnfbench("annex", "verify", str(tmp_path / "cmp"))
    assert verified.returncode == 0, verified.stderr
