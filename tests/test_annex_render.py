"""The annex of a run: HTML, PDF and JSON summary, and its verification."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from analysis.annex import AnnexParameters, AnnexVerifyError, render_annex, verify_annex
from analysis.synthetic import DEMO_VENDORS, SyntheticSpec
from bench.schemas import validate
from tests.analysis_runs import flip_byte, write_spec

FAST = AnnexParameters(bootstrap_samples=200)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A pristine run directory with its annex; tests copy it before changing anything."""
    root = tmp_path_factory.mktemp("annex")
    spec = SyntheticSpec(DEMO_VENDORS[0], replicas=(1, 2, 3, 4, 6), generator_short_at=(6, "64"))
    run_dir = write_spec(root, spec)
    render_annex(run_dir, params=FAST)
    return run_dir


@pytest.fixture
def run_copy(rendered: Path, tmp_path: Path) -> Path:
    target = tmp_path / rendered.name
    shutil.copytree(rendered, target)
    return target


def test_summary_validates_and_states_what_the_annex_must(rendered: Path) -> None:
    summary = json.loads((rendered / "annex" / "summary.json").read_text())
    validate("annex", summary, "summary.json")
    (run,) = summary["runs"]
    assert run["cnf"]["vendor"] == "fdio-like"
    assert run["cnf"]["images"][0]["digest"]
    assert run["cnf"]["chart"]["version"] == "1.0.0"
    assert run["testbed"]["fingerprint_sha256"]
    assert run["testbed"]["comparison"]["nic_model"]["match"] is True
    assert run["methodology"]["method"] == "mlrsearch"
    assert run["versions"]["trex"]
    names = {Path(f["path"]).name for f in summary["data_files"]}
    assert {"run.json", "journal.jsonl", "trials.parquet", "points.parquet"} <= names
    results = summary["results"]
    assert len(results["summary"]) == 5 * 2
    flags = results["stability_flags"]
    assert [(f["flag"], f["replicas"]) for f in flags] == [("generator-short", 6)]
    verdicts = {(f["frame_size"], f["model"], f["goal"]): f for f in results["fits"]}
    usl64 = verdicts[("64", "usl", "ndr")]
    assert usl64["verdict"] == "trustworthy"
    assert usl64["sigma_lo"] <= usl64["sigma"] <= usl64["sigma_hi"]
    imix = verdicts[("IMIX", "usl", "ndr")]
    assert imix["verdict"] != "trustworthy"
    assert "NIC ceiling" in imix["reasons"]
    assert "sigma" not in imix  # withheld, reasons given instead


def test_html_is_self_contained_with_embedded_figures(rendered: Path) -> None:
    page = (rendered / "annex" / "index.html").read_text()
    assert not re.search(r"""(src|href)=['"](https?:|//|file:)""", page)
    images = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", page)
    figures = list((rendered / "annex" / "figures").glob("*.png"))
    assert len(images) == len(figures) >= 4
    assert all(base64.b64decode(i)[:8] == b"\x89PNG\r\n\x1a\n" for i in images)
    for heading in ("Methodology and parameters", "Testbed", "Scaling fits", "Stability flags",
                    "Data files", "chart and images"):  # fmt: skip
        assert heading in page
    summary = json.loads((rendered / "annex" / "summary.json").read_text())
    for entry in summary["data_files"]:
        assert entry["sha256"] in page
    assert "NIC ceiling reached" in page


def test_pdf_renders_to_pages(rendered: Path, tmp_path: Path) -> None:
    pdf = rendered / "annex" / "annex.pdf"
    assert pdf.read_bytes()[:5] == b"%PDF-"
    subprocess.run(["pdftoppm", "-r", "30", "-png", str(pdf), str(tmp_path / "page")], check=True)
    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) >= 4
    text = subprocess.run(
        ["pdftotext", str(pdf), "-"], check=True, capture_output=True, text=True
    ).stdout
    assert "Scaling fits" in text and "Data files" in text


def test_a_fresh_annex_verifies(run_copy: Path) -> None:
    result = verify_annex(run_copy / "annex")
    assert result.data_files == 4
    assert result.runs == 1
    assert result.outputs >= 6  # html, pdf and the figures


@pytest.mark.parametrize("name", ["journal.jsonl", "trials.parquet", "points.parquet", "run.json"])
def test_one_changed_byte_of_a_data_file_fails_verification(run_copy: Path, name: str) -> None:
    flip_byte(run_copy / name)
    with pytest.raises(AnnexVerifyError, match=f"{re.escape(name)}: sha256 differs"):
        verify_annex(run_copy / "annex")


def test_a_summary_edited_with_hashes_intact_fails_the_re_derivation(run_copy: Path) -> None:
    path = run_copy / "annex" / "summary.json"
    summary = json.loads(path.read_text())
    summary["results"]["summary"][0]["ndr_mpps"] *= 1.10  # a flattering 10 %
    summary["outputs"] = []  # also drop the rendered files' hashes
    path.write_text(json.dumps(summary))
    with pytest.raises(AnnexVerifyError, match=r"results\.summary\[0\]\.ndr_mpps"):
        verify_annex(run_copy / "annex")


def test_a_changed_rendered_file_fails_verification(run_copy: Path) -> None:
    flip_byte(run_copy / "annex" / "index.html")
    with pytest.raises(AnnexVerifyError, match=r"index\.html: rendered file changed"):
        verify_annex(run_copy / "annex")


def test_rendering_again_replaces_the_annex_and_leaves_no_staging(run_copy: Path) -> None:
    render_annex(run_copy, params=FAST)
    assert sorted(p.name for p in run_copy.iterdir() if p.name.startswith(".")) == []
    verify_annex(run_copy / "annex")


def test_annex_commands_render_verify_and_fail(
    run_copy: Path, cnfbench: Callable[..., Any]
) -> None:
    shutil.rmtree(run_copy / "annex")
    rendered = cnfbench("annex", str(run_copy), "--bootstrap", "100")
    assert rendered.returncode == 0, rendered.stderr
    assert str(run_copy / "annex" / "index.html") in rendered.stdout
    ok = cnfbench("annex", "verify", str(run_copy / "annex"))
    assert ok.returncode == 0, ok.stderr
    assert "verified" in ok.stdout
    flip_byte(run_copy / "journal.jsonl")
    bad = cnfbench("annex", "verify", str(run_copy / "annex"))
    assert bad.returncode == 1
    assert "journal.jsonl: sha256 differs" in bad.stderr
    missing = cnfbench("annex", "verify", str(run_copy))
    assert missing.returncode == 2
    assert "no annex summary here" in missing.stderr
