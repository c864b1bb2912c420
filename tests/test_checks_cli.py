"""``cnfbench check`` through the real entry point: list, explain, outputs, exit codes."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess

from bench.schemas import validate

Run = Callable[..., CompletedProcess[str]]
CHARTS = Path(__file__).resolve().parent / "fixtures" / "charts"


def test_list_shows_every_check_with_its_metadata(cnfbench: Run) -> None:
    result = cnfbench("check", "--list")
    assert result.returncode == 0, result.stderr
    for needle in ("privileged", "security", "essential", "helm-lint", "dual-stack"):
        assert needle in result.stdout


def test_explain(cnfbench: Run) -> None:
    result = cnfbench("check", "--explain", "hardware-hostpath")
    assert result.returncode == 0
    for heading in (
        "Overview:",
        "Rationale:",
        "Remediation:",
        "hardware-resources-and-scheduling",
    ):
        assert heading in result.stdout
    unknown = cnfbench("check", "--explain", "no-such-check")
    assert unknown.returncode == 2
    assert unknown.stderr.startswith("cnfbench: error: no check 'no-such-check'")


def test_good_chart_exits_0_and_writes_valid_outputs(cnfbench: Run, tmp_path: Path) -> None:
    out, junit = tmp_path / "checks.json", tmp_path / "junit.xml"
    result = cnfbench(
        "check", str(CHARTS / "good"), "--dual-stack", "--json", str(out), "--junit", str(junit)
    )
    assert result.returncode == 0, result.stderr
    assert "26 passed" in result.stdout
    document = json.loads(out.read_text())
    validate("checks", document, str(out))
    assert document["summary"]["by_status"]["passed"] == 26
    root = ET.parse(junit).getroot()
    assert root.tag == "testsuites" and root.get("tests") == "26" and root.get("failures") == "0"


def test_essential_failures_exit_1_with_evidence(cnfbench: Run, tmp_path: Path) -> None:
    out, junit = tmp_path / "checks.json", tmp_path / "junit.xml"
    result = cnfbench("check", str(CHARTS / "insecure"), "--json", str(out), "--junit", str(junit))
    assert result.returncode == 1
    assert "essential check(s) did not pass" in result.stderr
    assert "privileged" in result.stderr.splitlines()[-1]
    document = json.loads(out.read_text())
    validate("checks", document, str(out))
    by_id = {r["id"]: r for r in document["results"]}
    assert by_id["privileged"]["impacted"] == [
        {"kind": "Deployment", "namespace": "cnf", "name": "insecure-app", "container": "priv"}
    ]
    assert by_id["privileged"]["remediation"]
    case = ET.parse(junit).getroot().find(".//testcase[@name='privileged']")
    assert case is not None
    failure = case.find("failure")
    assert failure is not None and failure.get("type") == "essential"
    assert "container priv" in (failure.text or "")


def test_only_and_bad_input(cnfbench: Run, tmp_path: Path) -> None:
    result = cnfbench("check", str(CHARTS / "insecure"), "--only", "image-pinned")
    assert result.returncode == 0
    assert "1 passed" in result.stdout
    missing = cnfbench("check", str(tmp_path / "nothing"), "--json", str(tmp_path / "c.json"))
    assert missing.returncode == 2
    assert "no such file or directory" in missing.stderr
    assert not (tmp_path / "c.json").exists()
    assert cnfbench("check").returncode == 2
    assert cnfbench("check", str(CHARTS / "good"), "--allow-ip", "10.0.0.300").returncode == 2
