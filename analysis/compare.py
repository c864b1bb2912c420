"""Comparison across runs and vendors: one tidy frame, normalised per testbed.

Throughput is normalised by the testbed's line rate at the point's frame size (the
share of line rate), so that runs on ports of different speeds can be set side by side
when the user insists; by default runs whose testbed fingerprints differ are refused,
since a different NIC, CPU or driver changes what the CNF can do.

Each vendor's throughput at a point is the mean over its runs (and repeated searches);
its standard error comes from the spread of those repeats.  The ratio of a vendor to
the baseline vendor, q = a/b, gets an interval from the delta method on the logarithm:
se(ln q) ≈ √((se_a/a)² + (se_b/b)²), q · exp(± z · se(ln q)).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from analysis.errors import AnalysisError
from analysis.loader import RunSet
from analysis.scaling import throughput_samples, throughput_table

log = logging.getLogger(__name__)

POINT_COLUMNS = ["replicas", "frame_size", "flows", "direction"]
Z_95 = 1.959964


class MismatchedTestbeds(AnalysisError):
    """Runs of different testbeds were given for comparison without --force."""

    exit_code = 2


def flatten_fields(value: Any, prefix: str = "") -> dict[str, Any]:
    """A nested mapping as dotted paths (``hosts[0].cpu_model``) to scalar values."""
    out: dict[str, Any] = {}
    if not prefix and isinstance(value, Mapping) and not value:
        return out
    if isinstance(value, Mapping) and value:
        for key, inner in value.items():
            out.update(flatten_fields(inner, f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
        for i, inner in enumerate(value):
            out.update(flatten_fields(inner, f"{prefix}[{i}]"))
    else:
        out[prefix or "(value)"] = value
    return out


def _fingerprint(manifest: Mapping[str, Any]) -> tuple[str | None, dict[str, Any], str | None]:
    testbed = manifest.get("testbed") or {}
    fingerprint = flatten_fields(testbed.get("fingerprint") or {})
    return testbed.get("fingerprint_sha256"), fingerprint, testbed.get("name")


def mismatched_testbeds(runs: RunSet) -> list[str]:
    """One line per run whose testbed fingerprint differs from the first run's."""
    ids = list(runs.manifests)
    if len(ids) < 2:
        return []
    first = ids[0]
    base_sha, base, base_name = _fingerprint(runs.manifests[first])
    out = []
    for other in ids[1:]:
        sha, fields, name = _fingerprint(runs.manifests[other])
        if sha == base_sha and sha is not None:
            continue
        if sha is None or base_sha is None:
            # without fingerprints only the testbed profiles' names can be compared
            if name is not None and name == base_name:
                log.warning("%s vs %s: no testbed fingerprint; same testbed name", other, first)
                continue
            out.append(
                f"{other} vs {first}: a testbed fingerprint is missing and the testbeds' "
                f"names differ ({base_name!r} vs {name!r})"
            )
            continue
        keys = sorted(set(base) | set(fields))
        diffs = [
            f"{key} {json.dumps(base.get(key))} vs {json.dumps(fields.get(key))}"
            for key in keys
            if base.get(key) != fields.get(key)
        ]
        detail = ", ".join(diffs[:5]) if diffs else "fingerprints differ"
        if len(diffs) > 5:
            detail += f" and {len(diffs) - 5} more fields"
        out.append(f"{other} vs {first}: testbed differs: {detail}")
    return out


def check_comparable(runs: RunSet, force: bool = False) -> list[str]:
    """Raise `MismatchedTestbeds` if the runs' testbeds differ, unless `force`."""
    mismatches = mismatched_testbeds(runs)
    if mismatches and not force:
        raise MismatchedTestbeds(
            f"refusing to compare runs of different testbeds ({mismatches[0]}"
            f"{f'; and {len(mismatches) - 1} more' if len(mismatches) > 1 else ''}); "
            "pass --force to compare them normalised by line rate"
        )
    for line in mismatches:
        log.warning("comparing across testbeds: %s", line)
    return mismatches


def comparison_frame(
    runs: RunSet, baseline: str | None = None, force: bool = False
) -> pd.DataFrame:
    """One row per run, point and goal (ndr/pdr), with the vendor's ratio to `baseline`.

    Columns: run_id, vendor, cnf, testbed, testbed_fingerprint, replicas, frame_size,
    flows, direction, goal, throughput_pps, throughput_std_pps, n, line_rate_pps,
    share_of_line, efficiency, vendor_share_mean, vendor_share_se, baseline_vendor,
    ratio_to_baseline, ratio_lo, ratio_hi (95 %).  The baseline defaults to the first
    vendor in alphabetical order.
    """
    check_comparable(runs, force)
    table = throughput_table(runs)
    if table.empty:
        raise AnalysisError("no throughput results in the given runs to compare")
    info = runs.runs.set_index("run_id")[["vendor", "cnf", "testbed", "testbed_fingerprint"]]
    rows = []
    for goal in ("ndr", "pdr"):
        part = table[["run_id", *POINT_COLUMNS, "n", "line_rate_pps"]].copy()
        part["goal"] = goal
        part["throughput_pps"] = table[f"{goal}_pps"]
        part["throughput_std_pps"] = table[f"{goal}_std_pps"]
        part["efficiency"] = table[f"efficiency_{goal}"]
        rows.append(part)
    frame = pd.concat(rows, ignore_index=True).join(info, on="run_id")
    frame["share_of_line"] = frame["throughput_pps"] / frame["line_rate_pps"]
    vendors = sorted(str(v) for v in frame["vendor"].dropna().unique())
    if baseline is None:
        baseline = vendors[0] if vendors else None
    elif baseline not in vendors:
        raise AnalysisError(f"baseline vendor {baseline!r} is not among {', '.join(vendors)}")
    frame = _with_ratios(runs, frame, baseline)
    return frame.sort_values(["goal", "frame_size", "replicas", "vendor", "run_id"]).reset_index(
        drop=True
    )


def _vendor_stats(runs: RunSet) -> pd.DataFrame:
    """Mean share of line rate per vendor, point and goal, with its standard error."""
    samples = throughput_samples(runs)
    samples = samples.join(runs.runs.set_index("run_id")["vendor"], on="run_id")
    out = []
    for goal in ("ndr", "pdr"):
        share = samples[f"{goal}_pps"] / samples["line_rate_pps"]
        stats = (
            samples.assign(share=share)
            .groupby(["vendor", *POINT_COLUMNS])["share"]
            .agg(["mean", "std", "size"])
            .reset_index()
        )
        stats["goal"] = goal
        stats["se"] = stats["std"].fillna(0.0) / np.sqrt(stats["size"])
        out.append(stats)
    return pd.concat(out, ignore_index=True).rename(
        columns={"mean": "vendor_share_mean", "se": "vendor_share_se", "size": "vendor_n"}
    )


def _with_ratios(runs: RunSet, frame: pd.DataFrame, baseline: str | None) -> pd.DataFrame:
    stats = _vendor_stats(runs)
    keys = ["vendor", *POINT_COLUMNS, "goal"]
    frame = frame.merge(
        stats[[*keys, "vendor_share_mean", "vendor_share_se", "vendor_n"]], on=keys, how="left"
    )
    frame["baseline_vendor"] = baseline
    if baseline is None:
        for column in ("ratio_to_baseline", "ratio_lo", "ratio_hi"):
            frame[column] = math.nan
        return frame
    base = stats[stats["vendor"] == baseline].drop(columns=["vendor", "std", "vendor_n"])
    base = base.rename(columns={"vendor_share_mean": "_b", "vendor_share_se": "_b_se"})
    frame = frame.merge(base, on=[*POINT_COLUMNS, "goal"], how="left")
    ratio = frame["vendor_share_mean"] / frame["_b"]
    se_log = np.sqrt(
        (frame["vendor_share_se"] / frame["vendor_share_mean"]) ** 2
        + (frame["_b_se"] / frame["_b"]) ** 2
    )
    frame["ratio_to_baseline"] = ratio
    frame["ratio_lo"] = ratio * np.exp(-Z_95 * se_log)
    frame["ratio_hi"] = ratio * np.exp(Z_95 * se_log)
    return frame.drop(columns=["_b", "_b_se"])


def side_by_side(frame: pd.DataFrame) -> pd.DataFrame:
    """NDR and PDR in Mpps per point (rows) and run (columns), for printing."""
    wide = frame.pivot_table(
        index=POINT_COLUMNS, columns=["goal", "run_id"], values="throughput_pps", aggfunc="mean"
    )
    wide = wide / 1e6
    wide.columns = [f"{str(col[0]).upper()} {col[1]} (Mpps)" for col in wide.columns]
    return wide.sort_index().reset_index()
