"""The performance annex: HTML, PDF and a JSON summary that anyone can verify.

`render_annex` writes, into one directory:

- ``summary.json``: what the annex states, derived from the run data only (methodology,
  testbed fingerprint and its comparison with the profile, versions, chart and image
  digests, results tables, fits and their verdicts, stability flags), the sha256 of
  every data file it was derived from, and the sha256 of every rendered file;
- ``index.html``: one self-contained page, figures embedded as base64 PNG;
- ``annex.pdf``: the same content for print;
- ``figures/*.png``, the same figures as files.

`verify_annex` recomputes the data files' hashes, re-derives the summary from the data
with the parameters recorded in it, and compares; any difference fails.  Because the
hashes cover the run's journal and manifest byte for byte, the annex must be rendered
after the last write to the run directory.

Format history (``schema_version`` of summary.json): 1, the first format.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import html
import importlib.metadata
import io
import json
import logging
import math
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis import figures as figs
from analysis.compare import comparison_frame, flatten_fields, mismatched_testbeds
from analysis.errors import AnalysisError, ResultsError
from analysis.latency import latency_table, tail_growth
from analysis.loader import RunSet, find_run_dirs, load_runs
from analysis.scaling import ScalingVerdict, fits_table, scaling_fits, throughput_table
from analysis.sessions import session_table
from analysis.stability import stability_flags
from analysis.summary import summary_from_tables
from analysis.tiers import check_rows, requirement_rows, tier_statement

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
SUMMARY = "summary.json"
HTML = "index.html"
PDF = "annex.pdf"
FIGURES = "figures"
REL_TOL = 1e-9
LIBRARIES = ("numpy", "pandas", "scipy", "matplotlib", "hdrhistogram", "reportlab", "pyarrow")


class AnnexError(AnalysisError):
    """The annex could not be rendered."""


class AnnexVerifyError(AnalysisError):
    """An annex does not match the data it claims to be derived from."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        head = problems[0] if problems else "verification failed"
        more = f" (and {len(problems) - 1} more difference(s))" if len(problems) > 1 else ""
        super().__init__(f"annex does not verify: {head}{more}")


@dataclass(frozen=True)
class AnnexParameters:
    """Everything besides the data that the derived summary depends on."""

    bootstrap_samples: int = 1000
    confidence: float = 0.95
    seed: int = 0
    knee_efficiency: float = 0.7
    min_marginal_gain: float = 0.5
    baseline_vendor: str | None = None
    force: bool = False
    # goals whose scaling is fitted; by default NDR and PDR for a run, NDR for a comparison
    fit_goals: tuple[str, ...] | None = None


@dataclass
class Annex:
    directory: Path
    summary: dict[str, Any]
    files: dict[str, Path] = field(default_factory=dict)


# --- hashing -------------------------------------------------------------------------


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def data_files(run_dir: Path) -> list[Path]:
    """The files of a run the annex is derived from: every regular file at the top of the
    run directory except the store's temporary files (the annex itself is a directory)."""
    return sorted(p for p in run_dir.iterdir() if p.is_file() and not p.name.startswith("."))


def _data_file_entries(runs: RunSet, annex_dir: Path) -> list[dict[str, Any]]:
    out = []
    for run_id, run_dir in runs.directories.items():
        for path in data_files(run_dir):
            out.append(
                {
                    "run_id": run_id,
                    "path": os.path.relpath(path.resolve(), annex_dir.resolve()),
                    "bytes": path.stat().st_size,
                    "sha256": sha256_file(path),
                }
            )
    return out


# --- the derived summary -------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    """Plain JSON values: NaN and None become null, infinities the strings "inf"/"-inf"."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return value
    if value is None or isinstance(value, str | int | bool):
        return value
    if value is pd.NA or value is pd.NaT:
        return None
    return str(value)


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    if frame.empty:
        return []
    return [_jsonable(row) for row in frame.to_dict(orient="records")]


def _run_entry(run_id: str, manifest: Mapping[str, Any]) -> dict[str, Any]:
    cnf = manifest.get("cnf") or {}
    testbed = manifest.get("testbed") or {}
    profiles = manifest.get("profiles") or {}
    entry: dict[str, Any] = _jsonable(
        {
            "run_id": run_id,
            "status": manifest.get("status"),
            "started_at": manifest.get("started_at"),
            "finished_at": manifest.get("finished_at"),
            "cnf": {
                "name": cnf.get("name"),
                "vendor": cnf.get("vendor"),
                "product": cnf.get("product"),
                "chart": cnf.get("chart"),
                "chart_id": cnf.get("chart_id"),
                "rendered_sha256": cnf.get("rendered_sha256"),
                "images": cnf.get("images") or [],
            },
            "testbed": {
                "name": testbed.get("name"),
                "fingerprint_sha256": testbed.get("fingerprint_sha256"),
                "fingerprint": testbed.get("fingerprint") or {},
                "comparison": testbed.get("comparison"),
            },
            "cluster": manifest.get("cluster") or {},
            "versions": manifest.get("versions") or {},
            "methodology": manifest.get("methodology") or {},
            "generator": manifest.get("generator") or {},
            "lab": manifest.get("lab"),
            "profiles": {
                name: {"path": p.get("path"), "sha256": p.get("sha256")}
                for name, p in sorted(profiles.items())
                if isinstance(p, Mapping)
            },
            "stages": {
                name: s.get("status")
                for name, s in sorted((manifest.get("stages") or {}).items())
                if isinstance(s, Mapping)
            },
        }
    )
    return entry


def _fits_records(verdicts: Sequence[ScalingVerdict]) -> list[dict[str, Any]]:
    """Fit rows; the parameters of a fit that is not trustworthy are withheld, and its
    reasons stated instead, so that no reader takes them for a result."""
    table = fits_table(verdicts)
    rows = _records(table)
    withheld = (
        "lambda_pps", "sigma", "kappa", "peak_replicas", "knee_replicas",
        "max_worth_replicas", "lambda_pps_lo", "lambda_pps_hi", "sigma_lo", "sigma_hi",
        "kappa_lo", "kappa_hi", "peak_replicas_lo", "peak_replicas_hi",
    )  # fmt: skip
    for row in rows:
        if row.get("verdict") != "trustworthy":
            for key in withheld:
                row.pop(key, None)
    return rows


@dataclass
class Derived:
    """The tables behind an annex; `summary` is the JSON part that verification compares."""

    summary: dict[str, Any]
    throughput: pd.DataFrame
    verdicts: list[ScalingVerdict]
    latency: pd.DataFrame
    sessions: pd.DataFrame
    flags: pd.DataFrame
    comparison: pd.DataFrame | None


def derive(
    runs: RunSet, annex_dir: Path, params: AnnexParameters, kind: str | None = None
) -> Derived:
    """Everything the annex states, from the data and `params` alone."""
    kind = kind or ("run" if len(runs.manifests) == 1 else "comparison")
    mismatches = mismatched_testbeds(runs)
    comparison = None
    if kind == "comparison":
        comparison = comparison_frame(runs, params.baseline_vendor, force=params.force)
    throughput = throughput_table(runs)
    goals = params.fit_goals or (("ndr", "pdr") if kind == "run" else ("ndr",))
    verdicts = scaling_fits(
        runs,
        goals=goals,
        bootstrap_samples=params.bootstrap_samples,
        confidence=params.confidence,
        seed=params.seed,
        knee_efficiency=params.knee_efficiency,
        min_marginal_gain=params.min_marginal_gain,
    )
    latency = latency_table(runs, throughput=throughput)
    sessions = session_table(runs)
    flags = stability_flags(runs)
    summary_rows = summary_from_tables(throughput, latency, sessions)
    columns = [*[c for c in summary_rows.columns if c != "run_id"], "run_id"]
    results: dict[str, Any] = {
        "summary": _records(summary_rows[columns]),
        "throughput": _records(throughput),
        "fits": _fits_records(verdicts),
        "latency": _records(latency),
        "tail_growth": _records(tail_growth(latency)),
        "sessions": _records(sessions),
        "stability_flags": _records(flags),
        "testbed_mismatches": mismatches,
    }
    if comparison is not None:
        results["comparison"] = _records(comparison)
    results["tiers"], results["checks"] = _tiers_and_checks(runs)
    summary = {
        "schema_version": SCHEMA_VERSION,
        "kind": kind,
        "title": _title(runs, kind),
        "parameters": _jsonable(asdict(params)),
        "runs": [_run_entry(rid, m) for rid, m in runs.manifests.items()],
        "data_files": _data_file_entries(runs, annex_dir),
        "results": results,
    }
    return Derived(summary, throughput, verdicts, latency, sessions, flags, comparison)


def _stored_json(path: Path) -> Mapping[str, Any] | None:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ResultsError(f"{path}:{exc.lineno}: not valid JSON: {exc.msg}") from exc
    return data if isinstance(data, Mapping) else None


def _tiers_and_checks(runs: RunSet) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Per run: the tier with its reasons (tiers.json) and every check result
    (checks.json), when the run has them."""
    tiers: list[dict[str, Any]] = []
    checks: list[dict[str, Any]] = []
    for run_id, run_dir in runs.directories.items():
        tier_doc = _stored_json(run_dir / "tiers.json")
        if tier_doc is not None:
            tiers.append(
                {
                    "run_id": run_id,
                    "tier": tier_doc["tier"],
                    "statement": tier_statement(tier_doc),
                    "requirements": requirement_rows(tier_doc),
                }
            )
        checks_doc = _stored_json(run_dir / "checks.json")
        if checks_doc is not None:
            checks += [{"run_id": run_id, **row} for row in check_rows(checks_doc)]
    return tiers, checks


def _title(runs: RunSet, kind: str) -> str:
    if kind == "run":
        (run_id, manifest), *_ = runs.manifests.items()
        cnf = manifest.get("cnf") or {}
        product = cnf.get("product") or cnf.get("name") or "CNF"
        return f"Performance annex: {product} ({cnf.get('vendor', 'unknown vendor')}), {run_id}"
    vendors = sorted({str(v) for v in runs.runs["vendor"].dropna()})
    return f"Performance comparison of {len(runs.manifests)} runs: {', '.join(vendors)}"


# --- figures -------------------------------------------------------------------------


@dataclass(frozen=True)
class RenderedFigure:
    name: str
    caption: str
    png: bytes


def _figures(runs: RunSet, derived: Derived) -> list[RenderedFigure]:
    out: list[tuple[str, str, Any]] = []
    if derived.comparison is None:
        (run_id,) = runs.manifests
        out.append(
            (
                "scaling-ndr",
                "NDR against replicas per frame size, with the USL fit and its 95 % "
                "bootstrap band (dashed when the fit is not trustworthy), and efficiency.",
                figs.scaling_figure(derived.throughput, derived.verdicts, run_id),
            )
        )
        out.append(
            ("ndr-pdr", "NDR and PDR per frame size and replica count.",
             figs.ndr_pdr_figure(derived.throughput, run_id))
        )  # fmt: skip
        for frame in dict.fromkeys(derived.latency.get("frame_size", pd.Series(dtype=str))):
            out.append(
                (
                    f"latency-{frame}",
                    f"One-way latency p50 and p99 against load, frame size {frame}, from "
                    "merged HDR histograms.",
                    figs.latency_figure(derived.latency, run_id, str(frame)),
                )
            )
        if not derived.sessions.empty:
            out.append(
                ("sessions", "Session capacity against replicas.",
                 figs.sessions_figure(derived.sessions, [run_id], [run_id]))
            )  # fmt: skip
    else:
        frame_sizes = list(dict.fromkeys(derived.comparison["frame_size"]))
        vendors = {
            str(k): str(v) for k, v in zip(runs.runs["run_id"], runs.runs["vendor"], strict=True)
        }
        for frame in frame_sizes:
            out.append(
                (
                    f"compare-ndr-{frame}",
                    f"NDR as a share of line rate per vendor, and its ratio to the baseline "
                    f"vendor with a 95 % interval, frame size {frame}.",
                    figs.vendor_comparison_figure(derived.comparison, str(frame)),
                )
            )
            out.append(
                (
                    f"efficiency-{frame}",
                    f"Scaling efficiency per vendor (mean and spread over runs), {frame}.",
                    figs.vendor_efficiency_figure(derived.throughput, vendors, str(frame)),
                )
            )
        if not derived.sessions.empty:
            first = runs.runs.drop_duplicates("vendor")
            out.append(
                ("sessions", "Session capacity against replicas, one run per vendor.",
                 figs.sessions_figure(derived.sessions, list(first["run_id"]),
                                      [str(v) for v in first["vendor"]]))
            )  # fmt: skip
    rendered = [RenderedFigure(name, caption, figs.figure_png(fig)) for name, caption, fig in out]
    return rendered


# --- HTML ----------------------------------------------------------------------------

CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2em auto;max-width:70em;
color:#222;line-height:1.4;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.2em;border-bottom:1px solid #ccc;margin-top:2em}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0 1em}
th,td{border:1px solid #ccc;padding:.2em .5em;text-align:right;vertical-align:top}
th{background:#f0f0f0}td.l,th.l{text-align:left}
.bad{color:#D55E00;font-weight:600}.ok{color:#009E73;font-weight:600}
figure{margin:1em 0}figcaption{font-size:.85em;color:#444}
code{font-size:.9em;word-break:break-all}
"""


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        if math.isnan(value):
            return "—"
        if math.isinf(value):
            return "∞" if value > 0 else "−∞"
        if abs(value) >= 1e5:
            return f"{value:,.0f}"
        if 0 < abs(value) < 1e-3:
            return f"{value:.4g}"
        return f"{value:.4g}" if abs(value) < 1 else f"{value:,.2f}"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10_000:
        return f"{value:,}"
    if value in ("inf", "-inf"):  # how the summary writes infinities
        return "∞" if value == "inf" else "−∞"
    return str(value)


def _html_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[tuple[str, str]]) -> str:
    if not rows:
        return "<p><em>none</em></p>"
    head = "".join(f"<th class='l'>{html.escape(label)}</th>" for _, label in columns)
    body = []
    for row in rows:
        cells = []
        for key, _ in columns:
            value = row.get(key)
            cls = " class='l'" if isinstance(value, str) or value is None else ""
            cells.append(f"<td{cls}>{html.escape(_cell(value))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


MAX_CELL_CHARS = 1500  # longer values are cut in the tables; summary.json has them whole


def kv_rows(mapping: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Rows of field/value for a nested mapping, with dotted field paths."""
    rows = []
    for key, value in flatten_fields(mapping).items():
        text = json.dumps(value) if isinstance(value, dict | list) else value
        if isinstance(text, str) and len(text) > MAX_CELL_CHARS:
            text = text[:MAX_CELL_CHARS] + " … (cut; see summary.json)"
        rows.append({"k": key, "v": text})
    return rows


def _kv_table(mapping: Mapping[str, Any]) -> str:
    return _html_table(kv_rows(mapping), [("k", "field"), ("v", "value")])


SUMMARY_COLUMNS = [
    ("run_id", "run"),
    ("replicas", "replicas"),
    ("frame_size", "frame"),
    ("flows", "flows"),
    ("direction", "dir"),
    ("ndr_mpps", "NDR Mpps"),
    ("pdr_mpps", "PDR Mpps"),
    ("ndr_gbps", "NDR Gbps (L1)"),
    ("pdr_gbps", "PDR Gbps (L1)"),
    ("efficiency", "E(R)"),
    ("p50_us_at_50", "p50 µs @50%"),
    ("p99_us_at_50", "p99 µs @50%"),
    ("p50_us_at_90", "p50 µs @90%"),
    ("p99_us_at_90", "p99 µs @90%"),
    ("session_capacity_flows", "sessions"),
]
FIT_COLUMNS = [
    ("run_id", "run"),
    ("frame_size", "frame"),
    ("goal", "goal"),
    ("model", "model"),
    ("verdict", "verdict"),
    ("sigma", "σ"),
    ("sigma_lo", "σ lo"),
    ("sigma_hi", "σ hi"),
    ("kappa", "κ"),
    ("kappa_lo", "κ lo"),
    ("kappa_hi", "κ hi"),
    ("r_squared", "R²"),
    ("peak_replicas", "R*"),
    ("knee_replicas", "knee"),
    ("max_worth_replicas", "worth up to"),
    ("reasons", "why not trustworthy"),
    ("advice", "what to try"),
]
FLAG_COLUMNS = [
    ("run_id", "run"),
    ("replicas", "replicas"),
    ("frame_size", "frame"),
    ("flag", "flag"),
    ("reason", "reason"),
    ("advice", "what to try"),
]
LATENCY_COLUMNS = [
    ("run_id", "run"),
    ("replicas", "replicas"),
    ("frame_size", "frame"),
    ("load_label", "load"),
    ("load_fraction_ndr", "of NDR"),
    ("p50_us", "p50 µs"),
    ("p90_us", "p90 µs"),
    ("p99_us", "p99 µs"),
    ("p999_us", "p99.9 µs"),
    ("max_us", "max µs"),
    ("samples", "samples"),
]
COMPARISON_COLUMNS = [
    ("vendor", "vendor"),
    ("frame_size", "frame"),
    ("replicas", "replicas"),
    ("goal", "goal"),
    ("vendor_n", "n"),
    ("vendor_share_mean", "share of line"),
    ("ratio_to_baseline", "ratio"),
    ("ratio_lo", "ratio lo"),
    ("ratio_hi", "ratio hi"),
    ("baseline_vendor", "baseline"),
]
# relative widths of wordy columns in the PDF's tables
COLUMN_WEIGHTS = {
    "run_id": 2.2, "reasons": 6.0, "advice": 3.5, "reason": 6.0, "path": 4.0, "sha256": 5.0,
    "k": 1.0, "v": 4.0, "product": 2.0, "vendor": 1.5, "testbed": 1.5,
}  # fmt: skip
FILE_COLUMNS = [("run_id", "run"), ("path", "file"), ("bytes", "bytes"), ("sha256", "sha256")]


def comparison_rows(summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per vendor, point and goal of a comparison summary."""
    seen: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in summary["results"].get("comparison", []):
        key = (row["vendor"], row["frame_size"], row["replicas"], row["goal"])
        seen.setdefault(key, row)
    return [seen[k] for k in sorted(seen, key=lambda k: (k[3], str(k[1]), k[2], str(k[0])))]


def _sections(summary: Mapping[str, Any]) -> list[tuple[str, list[tuple[str, Any]]]]:
    """The annex's content as (heading, [(kind, payload)]), shared by HTML and PDF."""
    runs = summary["runs"]
    results = summary["results"]
    sections: list[tuple[str, list[tuple[str, Any]]]] = []
    overview = [{"run_id": r["run_id"], "vendor": r["cnf"]["vendor"],
                 "product": r["cnf"]["product"], "testbed": r["testbed"]["name"],
                 "status": r["status"]} for r in runs]  # fmt: skip
    sections.append(
        ("Runs", [("table", (overview, [("run_id", "run"), ("vendor", "vendor"),
                                        ("product", "product"), ("testbed", "testbed"),
                                        ("status", "status")]))])
    )  # fmt: skip
    first = runs[0]
    method = first["methodology"]
    sections.append(
        (
            "Methodology and parameters",
            [
                ("text", "Throughput is the conditional throughput of each search goal "
                 "(RFC 9971 MLRsearch, ETSI GS NFV-TST 009 §12, RFC 2544 §26.1); NDR is the "
                 "zero-loss goal, PDR the partial-drop goal. Scaling efficiency is "
                 "E(R) = X(R)/(R·X(1)); fits are of the Universal Scalability Law "
                 "X(R) = λR/(1+σ(R−1)+κR(R−1)) and Amdahl's law (κ = 0), with bootstrap "
                 "intervals; R* = √((1−σ)/κ)."),
                ("kv", method),
                ("kv", {f"analysis.{k}": v for k, v in summary["parameters"].items()}),
            ],
        )
    )  # fmt: skip
    testbed_items: list[tuple[str, Any]] = []
    for run in runs[:10]:
        tb = run["testbed"]
        testbed_items.append(("text", f"{run['run_id']}: testbed {tb['name']}, fingerprint "
                                      f"sha256 {tb['fingerprint_sha256']}"))  # fmt: skip
        testbed_items.append(("kv", tb["fingerprint"]))
        comparison = tb.get("comparison")
        if isinstance(comparison, Mapping) and comparison:
            testbed_items.append(("text", "Comparison with the testbed profile:"))
            testbed_items.append(("kv", comparison))
    if len(runs) > 10:
        testbed_items.append(("text", f"… and {len(runs) - 10} more runs (see summary.json)."))
    if results["testbed_mismatches"]:
        testbed_items.append(
            ("bad", "Testbeds differ: " + "; ".join(results["testbed_mismatches"]))
        )
    sections.append(("Testbed", testbed_items))
    software: list[tuple[str, Any]] = [("kv", first["versions"]), ("kv", first["generator"])]
    for run in runs[:10]:
        software.append(("text", f"{run['run_id']}: chart and images"))
        cnf = run["cnf"]
        software.append(("kv", {k: cnf.get(k) for k in ("chart", "chart_id", "rendered_sha256",
                                                       "images")}))  # fmt: skip
    sections.append(("Software: tools, libraries, CNF chart and images", software))
    if summary["kind"] == "comparison":
        sections.append(
            ("Vendor comparison", [
                ("text", "Throughput normalised by each testbed's line rate; ratio to the "
                 "baseline vendor with a 95 % interval (delta method on the log ratio)."),
                ("table", (comparison_rows(summary), COMPARISON_COLUMNS)),
            ])
        )  # fmt: skip
    if summary["kind"] == "comparison":
        sections += _vendor_sections(summary)
    else:
        sections += _run_sections(summary)
    if results["sessions"] and summary["kind"] == "run":
        sections.append(("Sessions", [("table", (results["sessions"], [
            ("run_id", "run"), ("replicas", "replicas"), ("session_capacity_flows", "capacity"),
            ("per_replica_flows", "per replica"), ("efficiency", "efficiency")]))]))  # fmt: skip
    sections += _tier_sections(summary)
    sections.append(("Figures", [("figures", None)]))
    sections.append(("Stability flags", [("table", (results["stability_flags"], FLAG_COLUMNS))]))
    sections.append(
        ("Data files", [
            ("text", "The sha256 of every file this annex was derived from. "
             "`cnfbench annex verify DIR` recomputes them and re-derives this annex."),
            ("table", (summary["data_files"], FILE_COLUMNS)),
        ])
    )  # fmt: skip
    return sections


TIER_COLUMNS = [("run_id", "run"), ("tier", "tier"), ("statement", "reasons")]
REQUIREMENT_COLUMNS = [
    ("tier", "tier"),
    ("requirement", "requirement"),
    ("required", "required"),
    ("measured", "measured"),
    ("met", "met"),
]
CHECK_COLUMNS = [
    ("check", "check"),
    ("category", "category"),
    ("weight", "weight"),
    ("status", "status"),
    ("message", "message"),
    ("impacted", "impacted"),
]


def _tier_sections(summary: Mapping[str, Any]) -> list[tuple[str, list[tuple[str, Any]]]]:
    """The tier reached with every requirement, and the conformance checks."""
    results = summary["results"]
    tiers = results.get("tiers") or []
    checks = results.get("checks") or []
    out: list[tuple[str, list[tuple[str, Any]]]] = []
    if tiers:
        items: list[tuple[str, Any]] = [("table", (tiers, TIER_COLUMNS))]
        if summary["kind"] == "run":
            items = [("text", tiers[0]["statement"])]
            items.append(("table", (tiers[0]["requirements"], REQUIREMENT_COLUMNS)))
        out.append(("Tier", items))
    if checks:
        columns = (
            CHECK_COLUMNS if summary["kind"] == "run" else [("run_id", "run"), *CHECK_COLUMNS]
        )
        out.append(("Conformance checks", [("table", (checks, columns))]))
    return out


def _run_sections(summary: Mapping[str, Any]) -> list[tuple[str, list[tuple[str, Any]]]]:
    results = summary["results"]
    return [
        ("Results per replica count", [("table", (results["summary"], SUMMARY_COLUMNS))]),
        ("Scaling fits", [
            ("text", "Parameters are shown only for trustworthy fits; otherwise the reasons "
             "are given instead."),
            ("table", (results["fits"], FIT_COLUMNS)),
        ]),
        ("Latency", [("table", (results["latency"], LATENCY_COLUMNS))]),
    ]  # fmt: skip


def _frame_of(rows: Sequence[Mapping[str, Any]], vendors: Mapping[str, str]) -> pd.DataFrame:
    frame = pd.DataFrame(list(rows))
    if not frame.empty:
        frame["vendor"] = frame["run_id"].map(vendors)
        frame = frame.replace({"inf": math.inf, "-inf": -math.inf})
    return frame


def vendor_tables(summary: Mapping[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Per-vendor aggregates of a comparison summary (for reading; the per-run rows are
    in the summary itself): results per point, fits, and latency."""
    vendors = {r["run_id"]: r["cnf"]["vendor"] for r in summary["runs"]}
    results = summary["results"]
    out: dict[str, list[dict[str, Any]]] = {"summary": [], "fits": [], "latency": []}
    points = _frame_of(results["summary"], vendors)
    if not points.empty:
        keys = ["vendor", "frame_size", "replicas"]
        numeric = ["ndr_mpps", "pdr_mpps", "ndr_gbps", "efficiency", "p99_us_at_50",
                   "p99_us_at_90", "session_capacity_flows"]  # fmt: skip
        means = points.groupby(keys)[numeric].mean().reset_index()
        means["runs"] = points.groupby(keys).size().to_numpy()
        out["summary"] = _records(means)
    fits = _frame_of(results["fits"], vendors)
    if not fits.empty:
        rows = []
        for key, part in fits.groupby(["vendor", "frame_size", "goal", "model"], sort=True):
            trusted = part[part["verdict"] == "trustworthy"]
            row: dict[str, Any] = dict(zip(("vendor", "frame_size", "goal", "model"), key,
                                           strict=True))  # fmt: skip
            row["runs"] = len(part)
            row["trustworthy"] = len(trusted)
            for name in ("sigma", "kappa", "peak_replicas", "max_worth_replicas"):
                values = trusted[name].astype(float) if name in trusted else pd.Series([])
                row[f"{name}_median"] = float(values.median()) if len(values) else None
                row[f"{name}_min"] = float(values.min()) if len(values) else None
                row[f"{name}_max"] = float(values.max()) if len(values) else None
            reasons = part.loc[part["verdict"] != "trustworthy", "reasons"]
            row["reasons"] = str(reasons.mode().iloc[0]) if len(reasons) else ""
            rows.append(row)
        out["fits"] = [_jsonable(r) for r in rows]
    latency = _frame_of(results["latency"], vendors)
    if not latency.empty:
        keys = ["vendor", "frame_size", "replicas", "load_label"]
        columns = ["load_fraction_ndr", "p50_us", "p99_us", "p999_us"]
        table = latency.groupby(keys)[columns].median().reset_index()
        out["latency"] = _records(table.sort_values(["vendor", "frame_size", "replicas",
                                                     "load_fraction_ndr"]))  # fmt: skip
    return out


VENDOR_SUMMARY_COLUMNS = [
    ("vendor", "vendor"), ("frame_size", "frame"), ("replicas", "replicas"), ("runs", "runs"),
    ("ndr_mpps", "NDR Mpps"), ("pdr_mpps", "PDR Mpps"), ("ndr_gbps", "NDR Gbps (L1)"),
    ("efficiency", "E(R)"), ("p99_us_at_50", "p99 µs @50%"), ("p99_us_at_90", "p99 µs @90%"),
    ("session_capacity_flows", "sessions"),
]  # fmt: skip
VENDOR_FIT_COLUMNS = [
    ("vendor", "vendor"), ("frame_size", "frame"), ("goal", "goal"), ("model", "model"),
    ("runs", "runs"), ("trustworthy", "trustworthy"), ("sigma_median", "σ median"),
    ("sigma_min", "σ min"), ("sigma_max", "σ max"), ("kappa_median", "κ median"),
    ("peak_replicas_median", "R* median"), ("max_worth_replicas_median", "worth up to"),
    ("reasons", "commonest reason when not trustworthy"),
]  # fmt: skip
VENDOR_LATENCY_COLUMNS = [
    ("vendor", "vendor"), ("frame_size", "frame"), ("replicas", "replicas"),
    ("load_label", "load"), ("load_fraction_ndr", "of NDR"), ("p50_us", "p50 µs"),
    ("p99_us", "p99 µs"), ("p999_us", "p99.9 µs"),
]  # fmt: skip


def _vendor_sections(summary: Mapping[str, Any]) -> list[tuple[str, list[tuple[str, Any]]]]:
    tables = vendor_tables(summary)
    note = ("text", "Means (latency: medians) over each vendor's runs; every run's own rows "
            "are in summary.json.")  # fmt: skip
    return [
        ("Results per vendor and replica count",
         [note, ("table", (tables["summary"], VENDOR_SUMMARY_COLUMNS))]),
        ("Scaling fits per vendor", [
            ("text", "Over the trustworthy fits of each vendor's runs; fits that are not "
             "trustworthy contribute no parameters."),
            ("table", (tables["fits"], VENDOR_FIT_COLUMNS)),
        ]),
        ("Latency per vendor", [note, ("table", (tables["latency"], VENDOR_LATENCY_COLUMNS))]),
    ]  # fmt: skip


def render_html(summary: Mapping[str, Any], rendered: Sequence[RenderedFigure]) -> str:
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{html.escape(summary['title'])}</title><style>{CSS}</style></head><body>",
        f"<h1>{html.escape(summary['title'])}</h1>",
    ]
    for heading, items in _sections(summary):
        parts.append(f"<h2>{html.escape(heading)}</h2>")
        for kind, payload in items:
            if kind == "text":
                parts.append(f"<p>{html.escape(payload)}</p>")
            elif kind == "bad":
                parts.append(f"<p class='bad'>{html.escape(payload)}</p>")
            elif kind == "kv":
                parts.append(_kv_table(payload))
            elif kind == "table":
                parts.append(_html_table(*payload))
            elif kind == "figures":
                for fig in rendered:
                    data = base64.b64encode(fig.png).decode("ascii")
                    parts.append(
                        f"<figure id='{fig.name}'><img alt='{html.escape(fig.caption)}' "
                        f"style='max-width:100%' src='data:image/png;base64,{data}'>"
                        f"<figcaption>{html.escape(fig.caption)}</figcaption></figure>"
                    )
    parts.append("</body></html>")
    return "\n".join(parts)


# --- PDF -----------------------------------------------------------------------------


def render_pdf(summary: Mapping[str, Any], rendered: Sequence[RenderedFigure], path: Path) -> None:
    from reportlab.lib import colors  # noqa: PLC0415 - only rendering needs reportlab
    from reportlab.lib.pagesizes import A4, landscape  # noqa: PLC0415
    from reportlab.lib.styles import getSampleStyleSheet  # noqa: PLC0415
    from reportlab.lib.units import cm  # noqa: PLC0415
    from reportlab.platypus import (  # noqa: PLC0415
        Image,
        LongTable,
        Paragraph,
        SimpleDocTemplate,
        Spacer,
        TableStyle,
    )

    styles = getSampleStyleSheet()
    small = styles["BodyText"].clone("small", fontSize=6.5, leading=8)
    body = styles["BodyText"].clone("body", fontSize=9, leading=11.5)
    bad = body.clone("bad", textColor=colors.HexColor("#D55E00"))
    page = landscape(A4)
    width = page[0] - 3 * cm

    def para(text: Any, style: Any = small) -> Any:
        return Paragraph(html.escape(_cell(text)), style)

    def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[tuple[str, str]]) -> Any:
        if not rows:
            return Paragraph("<i>none</i>", body)
        weights = [COLUMN_WEIGHTS.get(key, 1.0) for key, _ in columns]
        widths = [width * w / sum(weights) for w in weights]

        def cell(value: Any, column_width: float) -> Any:
            # a plain string is cheap to lay out but never wraps: only for short text
            text = _cell(value)
            return text if len(text) * 3.6 < column_width - 4 else para(text)

        data = [[para(label) for _, label in columns]]
        data += [[cell(row.get(key), w) for (key, _), w in zip(columns, widths, strict=True)]
                 for row in rows]  # fmt: skip
        t = LongTable(data, repeatRows=1, colWidths=widths)
        t.setStyle(TableStyle([
            ("FONTNAME", (0, 0), (-1, -1), "Helvetica"), ("FONTSIZE", (0, 0), (-1, -1), 6.5),
            ("LEADING", (0, 0), (-1, -1), 8),
            ("GRID", (0, 0), (-1, -1), 0.25, colors.HexColor("#BBBBBB")),
            ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#EEEEEE")),
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ("TOPPADDING", (0, 0), (-1, -1), 1), ("BOTTOMPADDING", (0, 0), (-1, -1), 1),
        ]))  # fmt: skip
        return t

    def kv(mapping: Mapping[str, Any]) -> Any:
        return table(kv_rows(mapping), [("k", "field"), ("v", "value")])

    story: list[Any] = [Paragraph(html.escape(summary["title"]), styles["Title"])]
    for heading, items in _sections(summary):
        story.append(Paragraph(html.escape(heading), styles["Heading2"]))
        for kind, payload in items:
            if kind == "text":
                story.append(Paragraph(html.escape(payload), body))
            elif kind == "bad":
                story.append(Paragraph(html.escape(payload), bad))
            elif kind == "kv":
                story.append(kv(payload))
            elif kind == "table":
                story.append(table(*payload))
            elif kind == "figures":
                for fig in rendered:
                    image = Image(io.BytesIO(fig.png))
                    # two figures to a page
                    scale = min(0.75 * width / image.drawWidth, 0.36 * page[1] / image.drawHeight)
                    image.drawWidth *= scale
                    image.drawHeight *= scale
                    story += [image, Paragraph(html.escape(fig.caption), small), Spacer(1, 8)]
            story.append(Spacer(1, 4))

    def footer(canvas: Any, doc: Any) -> None:
        canvas.saveState()
        canvas.setFont("Helvetica", 7)
        canvas.drawString(1.5 * cm, 0.8 * cm, f"cnfbench annex · {summary['title'][:120]}")
        canvas.drawRightString(page[0] - 1.5 * cm, 0.8 * cm, f"page {doc.page}")
        canvas.restoreState()

    doc = SimpleDocTemplate(
        str(path), pagesize=page, leftMargin=1.5 * cm, rightMargin=1.5 * cm,
        topMargin=1.5 * cm, bottomMargin=1.5 * cm, title=summary["title"], author="cnfbench",
        invariant=1,
    )  # fmt: skip
    doc.build(story, onFirstPage=footer, onLaterPages=footer)


# --- render and verify ---------------------------------------------------------------


def _library_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in ("cnfbench", *LIBRARIES):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def _replace_dir(staging: Path, target: Path) -> None:
    """Move a fully written `staging` directory to `target`, replacing any old one."""
    old = target.with_name(f".{target.name}.old")
    if old.exists():
        shutil.rmtree(old)
    if target.exists():
        target.rename(old)
    staging.rename(target)
    if old.exists():
        shutil.rmtree(old)


def render_annex(
    paths: Path | str | Iterable[Path | str],
    out_dir: Path | None = None,
    params: AnnexParameters | None = None,
) -> Annex:
    """Render the annex of the runs under `paths` into `out_dir`.

    One run: ``RUN_DIR/annex`` by default.  Several runs: a comparison annex; `out_dir`
    is then required.  Nothing is left half-written: the annex is built in a sibling
    directory and moved into place when complete.
    """
    params = params or AnnexParameters()
    # a canonical order of runs, so that verification re-derives the same tables
    runs = load_runs(sorted({p.resolve() for p in find_run_dirs(paths)}))
    if out_dir is None:
        if len(runs.directories) != 1:
            raise AnnexError("a comparison annex of several runs needs an output directory")
        out_dir = next(iter(runs.directories.values())) / "annex"
    out_dir = Path(out_dir)
    derived = derive(runs, out_dir, params)
    rendered = _figures(runs, derived)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    staging.chmod(0o755)
    try:
        files = _write(staging, derived.summary, rendered)
        _replace_dir(staging, out_dir)
    finally:
        # after a failure nothing half-written stays; after success staging is gone
        shutil.rmtree(staging, ignore_errors=True)
    log.info("annex of %d run(s) written to %s", len(runs.manifests), out_dir)
    return Annex(out_dir, derived.summary, {k: out_dir / v for k, v in files.items()})


def _write(
    staging: Path, summary: dict[str, Any], rendered: Sequence[RenderedFigure]
) -> dict[str, str]:
    (staging / FIGURES).mkdir()
    files = {"html": HTML, "pdf": PDF}
    for fig in rendered:
        (staging / FIGURES / f"{fig.name}.png").write_bytes(fig.png)
        files[f"figure:{fig.name}"] = f"{FIGURES}/{fig.name}.png"
    (staging / HTML).write_text(render_html(summary, rendered), encoding="utf-8")
    render_pdf(summary, rendered, staging / PDF)
    outputs = sorted(p for p in (staging).rglob("*") if p.is_file())
    document = dict(summary)
    document["figures"] = [
        {"name": f.name, "caption": f.caption, "png": f"{FIGURES}/{f.name}.png"}
        for f in rendered
    ]  # fmt: skip
    document["outputs"] = [
        {"path": p.relative_to(staging).as_posix(), "sha256": sha256_file(p)} for p in outputs
    ]
    document["rendering"] = {
        "rendered_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "libraries": _library_versions(),
    }
    text = json.dumps(_jsonable(document), indent=2, sort_keys=True, allow_nan=False)
    (staging / SUMMARY).write_text(text + "\n", encoding="utf-8")
    return files


def read_summary(annex_dir: Path) -> dict[str, Any]:
    path = annex_dir / SUMMARY
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ResultsError(f"{path}: no annex summary here; is this an annex directory?") from exc
    except json.JSONDecodeError as exc:
        raise ResultsError(
            f"{path}:{exc.lineno}: the summary is not valid JSON: {exc.msg}"
        ) from exc
    if not isinstance(document, dict) or document.get("schema_version") != SCHEMA_VERSION:
        version = document.get("schema_version") if isinstance(document, dict) else None
        raise ResultsError(f"{path}: schema_version: {version!r} is not a version this reads")
    return document


def _differences(stored: Any, derived: Any, where: str, out: list[str]) -> None:
    if isinstance(stored, dict) and isinstance(derived, dict):
        for key in sorted(set(stored) | set(derived)):
            if key not in stored:
                out.append(f"{where}.{key}: missing from the annex")
            elif key not in derived:
                out.append(f"{where}.{key}: not derivable from the data")
            else:
                _differences(stored[key], derived[key], f"{where}.{key}", out)
    elif isinstance(stored, list) and isinstance(derived, list):
        if len(stored) != len(derived):
            out.append(
                f"{where}: {len(stored)} entries in the annex, {len(derived)} from the data"
            )
        for i, (a, b) in enumerate(zip(stored, derived, strict=False)):
            _differences(a, b, f"{where}[{i}]", out)
    elif (
        isinstance(stored, int | float)
        and isinstance(derived, int | float)
        and not (isinstance(stored, bool) or isinstance(derived, bool))
    ):
        if not math.isclose(stored, derived, rel_tol=REL_TOL, abs_tol=1e-12):
            out.append(f"{where}: {stored!r} in the annex, {derived!r} from the data")
    elif stored != derived:
        out.append(f"{where}: {stored!r} in the annex, {derived!r} from the data")


@dataclass(frozen=True)
class Verification:
    directory: Path
    data_files: int
    outputs: int
    runs: int


def verify_annex(annex_dir: Path | str) -> Verification:
    """Recompute every hash and re-derive the summary; raise `AnnexVerifyError` on any
    difference."""
    annex_dir = Path(annex_dir)
    stored = read_summary(annex_dir)
    problems: list[str] = []

    for entry in stored.get("data_files", []):
        path = (annex_dir / entry["path"]).resolve()
        if not path.is_file():
            problems.append(f"{entry['path']}: data file missing")
        elif sha256_file(path) != entry["sha256"]:
            problems.append(f"{entry['path']}: sha256 differs from the annex's")
    for entry in stored.get("outputs", []):
        path = annex_dir / entry["path"]
        if not path.is_file():
            problems.append(f"{entry['path']}: rendered file missing")
        elif sha256_file(path) != entry["sha256"]:
            problems.append(f"{entry['path']}: rendered file changed since rendering")
    if problems:
        raise AnnexVerifyError(problems)

    run_dirs = sorted(
        {(annex_dir / Path(e["path"]).parent).resolve() for e in stored["data_files"]}
    )
    if not run_dirs:
        raise AnnexVerifyError(["the annex names no data files"])
    stored_params = dict(stored.get("parameters", {}))
    if stored_params.get("fit_goals") is not None:
        stored_params["fit_goals"] = tuple(stored_params["fit_goals"])
    params = AnnexParameters(**stored_params)
    try:
        derived = derive(load_runs(run_dirs), annex_dir, params, stored.get("kind"))
    except ResultsError as exc:
        raise AnnexVerifyError([f"the data cannot be read: {exc}"]) from exc
    expected = json.loads(json.dumps(derived.summary, allow_nan=False))
    comparable = {k: v for k, v in stored.items() if k in expected}
    _differences(comparable, expected, "summary", problems)
    if problems:
        raise AnnexVerifyError(problems)
    return Verification(
        annex_dir, len(stored["data_files"]), len(stored.get("outputs", [])), len(run_dirs)
    )
