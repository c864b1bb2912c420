"""The vendor comparison notebook runs on stored results and shows what it promises."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from analysis.synthetic import DEMO_VENDORS, SyntheticSpec
from tests.analysis_runs import write_demo_runs, write_spec

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "compare_vendors.ipynb"


def _texts(cell: Any) -> str:
    out = []
    for output in cell.get("outputs", []):
        if "text" in output:
            out.append(output["text"])
        data = output.get("data", {})
        out.append(data.get("text/plain", ""))
        out.append(data.get("text/html", ""))
    return "\n".join(out)


def _images(cell: Any) -> int:
    return sum("image/png" in o.get("data", {}) for o in cell.get("outputs", []))


def test_notebook_imports_analysis_only() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    source = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    imported = {
        line.split()[1].split(".")[0]
        for line in source.splitlines()
        if line.startswith(("import ", "from "))
    }
    assert imported == {"os", "pathlib", "analysis"}


def test_notebook_executes_on_stored_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    results = tmp_path / "results"
    # two runs of one vendor: the notebook takes the latest of each vendor
    shape: dict[str, Any] = {"replicas": (1, 2, 3, 4, 6, 8), "frame_sizes": ("64",)}
    write_demo_runs(results, **shape)
    older = SyntheticSpec(DEMO_VENDORS[2], seed=9, run_id="older-cgnat", started_at=1.7e9, **shape)
    write_spec(results, older)
    monkeypatch.setitem(os.environ, "CNFBENCH_RESULTS", str(results))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    code = [c for c in nb.cells if c.cell_type == "code"]
    errors = [o for c in code for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors

    loaded, frame, figures, fits, scaling_figs, prose, sessions = code
    assert "older-cgnat" not in _texts(loaded)
    for vendor in DEMO_VENDORS:
        assert vendor.vendor in _texts(loaded)
        assert vendor.vendor in _texts(frame)
        assert vendor.vendor in _texts(fits)
    assert "ratio_to_baseline" in _texts(frame)
    assert _images(figures) == 1  # one frame size
    assert _images(scaling_figs) == 3  # one per vendor
    assert _images(sessions) == 1
    assert "trustworthy" in _texts(fits)
    lines = _texts(prose).strip().splitlines()
    assert len(lines) == 3
    fdio = next(line for line in lines if line.startswith("fdio-like"))
    assert "σ = " in fdio or "no trustworthy USL fit" in fdio
    natco = next(line for line in lines if line.startswith("natco"))
    assert "σ = 0.1" in natco or "σ = 0.0" in natco  # true σ = 0.10
    assert "peak at R*" in natco
