"""Check results as JUnit XML, the report format CI systems read.

One ``<testsuite>`` per category, one ``<testcase>`` per check (classname
``cnfbench.<category>``); a failed check carries ``<failure>`` with its evidence and
remediation, an error ``<error>``, a skipped check ``<skipped>`` with the reason.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from pathlib import Path

from bench.checks.registry import CheckResult, Status
from bench.errors import InputError


def junit_tree(results: Iterable[CheckResult], name: str = "cnfbench") -> ET.ElementTree:
    results = list(results)
    root = ET.Element("testsuites", name=name)
    by_category: dict[str, list[CheckResult]] = {}
    for r in results:
        by_category.setdefault(r.check.category.value, []).append(r)
    totals = dict.fromkeys(("tests", "failures", "errors", "skipped"), 0)
    total_time = 0.0
    for category, items in by_category.items():
        suite = ET.SubElement(root, "testsuite", name=f"{name}.{category}")
        counts = {
            "tests": len(items),
            "failures": sum(r.status is Status.FAILED for r in items),
            "errors": sum(r.status is Status.ERROR for r in items),
            "skipped": sum(r.status is Status.SKIPPED for r in items),
        }
        time_s = sum(r.duration_s for r in items)
        for key, value in counts.items():
            suite.set(key, str(value))
            totals[key] += value
        suite.set("time", f"{time_s:.3f}")
        total_time += time_s
        for r in items:
            _testcase(suite, r, category)
    for key, value in totals.items():
        root.set(key, str(value))
    root.set("time", f"{total_time:.3f}")
    ET.indent(root)
    return ET.ElementTree(root)


def _testcase(suite: ET.Element, r: CheckResult, category: str) -> None:
    case = ET.SubElement(
        suite,
        "testcase",
        classname=f"cnfbench.{category}",
        name=r.check.id,
        time=f"{r.duration_s:.3f}",
    )
    detail = "\n".join(
        [*r.evidence, *(f"impacted: {res}" for res in r.impacted)]
        + ([f"remediation: {r.check.remediation}"] if r.status is Status.FAILED else [])
    )
    if r.status is Status.FAILED:
        node = ET.SubElement(case, "failure", message=r.message, type=r.check.weight.value)
        node.text = detail
    elif r.status is Status.ERROR:
        ET.SubElement(case, "error", message=r.message, type="error").text = detail
    elif r.status is Status.SKIPPED:
        ET.SubElement(case, "skipped", message=r.message)
    ET.SubElement(case, "system-out").text = r.message


def write_junit(results: Iterable[CheckResult], path: Path, name: str = "cnfbench") -> Path:
    """Write the report atomically (a temp file renamed into place)."""
    tree = junit_tree(results, name)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tree.write(tmp, encoding="utf-8", xml_declaration=True)
        os.replace(tmp, path)
    except OSError as exc:
        raise InputError(f"{path}: cannot write the JUnit report: {exc.strerror}") from exc
    return path
