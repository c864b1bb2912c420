"""Latency: percentiles from merged HDR histograms, latency against load, tail growth.

Latency streams report one-way latency in microseconds; the generator encodes each
direction's samples as an HDR histogram (HdrHistogram's compressed base64 form), and
the values recorded in it are microseconds.  Percentiles over several directions or
repeated trials are taken from the merged histogram, never by averaging percentiles,
which has no statistical meaning.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from hdrh.histogram import HdrHistogram

from analysis.errors import ResultsError
from analysis.loader import RunSet
from analysis.scaling import throughput_table

log = logging.getLogger(__name__)

PERCENTILES = {"p50_us": 50.0, "p90_us": 90.0, "p99_us": 99.0, "p999_us": 99.9}
LATENCY_KEYS = ("run_id", "frame_size", "flows", "direction", "replicas")
_LAYOUTS: dict[tuple[int, int, int, int], _Layout] = {}
HDRH_COLUMN = re.compile(r"^latency_(?:.+_)?hdrh$")
TAIL_GROWTH_LIMIT = 3.0  # p99 near NDR more than 3x the p99 at light load


def decode_histogram(encoded: str, where: str = "") -> HdrHistogram:
    try:
        return HdrHistogram.decode(encoded)
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        raise ResultsError(f"{where}: cannot decode an HDR histogram: {exc}") from exc


def merge_histograms(encoded: Iterable[str], where: str = "") -> HdrHistogram | None:
    """The sum of the encoded histograms, or None when there are none."""
    merged: HdrHistogram | None = None
    for text in encoded:
        hist = decode_histogram(text, where)
        if merged is None:
            merged = hist
        else:
            merged.add(hist)
    return merged


@dataclass(frozen=True)
class _Layout:
    """Per counts index of one histogram layout: lowest, highest, median-equivalent value."""

    lows: np.ndarray
    highs: np.ndarray
    mids: np.ndarray


def _layout(hist: HdrHistogram) -> _Layout:
    key = (hist.bucket_count, hist.sub_bucket_count, hist.unit_magnitude, hist.counts_len)
    cached = _LAYOUTS.get(key)
    if cached is None:
        lows = [hist.get_value_from_index(i) for i in range(hist.counts_len)]
        highs = [hist.get_highest_equivalent_value(v) for v in lows]
        low = np.asarray(lows, dtype=np.int64)
        high = np.asarray(highs, dtype=np.int64)
        size = high - low + 1
        cached = _Layout(low, high, (low + size // 2).astype(float))
        _LAYOUTS[key] = cached
    return cached


def histogram_stats_us(hist: HdrHistogram) -> dict[str, float]:
    """Percentiles, extremes and mean of a histogram whose values are microseconds.

    The library computes each percentile and the mean by walking the counts in Python;
    here the same definitions run over the counts array: the value at percentile q is
    the highest value equivalent to the first index whose cumulative count reaches
    max(1, ⌊q/100 · total + ½⌋), and the mean weights each index's median-equivalent
    value by its count.
    """
    layout = _layout(hist)
    counts = np.ctypeslib.as_array(hist.counts)[: hist.counts_len].astype(np.int64)
    total = int(hist.get_total_count())
    out: dict[str, float] = {}
    if total <= 0:
        return {**dict.fromkeys((*PERCENTILES, "min_us", "max_us", "mean_us"), math.nan),
                "samples": 0.0}  # fmt: skip
    cumulative = np.cumsum(counts)
    for name, q in PERCENTILES.items():
        target = max(int(min(q, 100.0) * total / 100 + 0.5), 1)
        index = int(np.searchsorted(cumulative, target, side="left"))
        out[name] = float(layout.highs[min(index, counts.size - 1)])
    out["min_us"] = float(hist.get_min_value())
    out["max_us"] = float(hist.get_max_value())
    # an elementwise product, not a BLAS dot: threaded BLAS is slow for one short vector
    out["mean_us"] = float(np.multiply(counts, layout.mids).sum() / total)
    out["samples"] = float(total)
    return out


def _encodings(value: object) -> list[str]:
    if not isinstance(value, str) or not value:
        return []
    # the trials table keeps one JSON object of direction -> histogram
    if value.startswith("{"):
        return [str(v) for v in json.loads(value).values() if v]
    return [value]


def _latency_trials(runs: RunSet, run_id: str | None) -> pd.DataFrame:
    """Valid latency trials with a ``load_label``: the extra field when the sweep wrote
    one, else what follows ``latency-`` in the trial's phase."""
    trials = runs.trials
    if trials.empty or "kind" not in trials:
        return pd.DataFrame()
    rows = trials[(trials["kind"] == "latency") & (trials["valid"].astype(bool))].copy()
    if run_id is not None:
        rows = rows[rows["run_id"] == run_id]
    label = rows["load_label"] if "load_label" in rows else pd.Series(None, index=rows.index)
    if "phase" in rows:
        from_phase = rows["phase"].astype("string").str.removeprefix("latency-")
        label = label.where(label.notna(), from_phase)
    rows["load_label"] = label
    rows["load_pps"] = rows["intended_load_pps"]
    return rows


def _latency_rows(runs: RunSet, run_id: str | None) -> tuple[pd.DataFrame, list[str]]:
    """The rows to summarise and their histogram columns.  Latency records are preferred;
    when they carry no histograms, the histograms of their latency trials are attached."""
    points = runs.points
    if not points.empty and "measure" in points:
        rows = points[points["measure"] == "latency"]
        if run_id is not None:
            rows = rows[rows["run_id"] == run_id]
        if not rows.empty:
            columns = [c for c in rows.columns if HDRH_COLUMN.match(c)]
            if columns and rows[columns].notna().any(axis=None):
                return rows, columns
            return _with_trial_histograms(rows, _latency_trials(runs, run_id)), ["trial_hdrh"]
    # no latency records: fall back to the latency trials themselves
    rows = _latency_trials(runs, run_id)
    return rows, ["hdrh"] if "hdrh" in rows else []


def _with_trial_histograms(rows: pd.DataFrame, trials: pd.DataFrame) -> pd.DataFrame:
    keys = [*LATENCY_KEYS, "load_label"]
    rows = rows.copy()
    if trials.empty or "hdrh" not in trials:
        rows["trial_hdrh"] = None
        return rows
    found = trials[trials["hdrh"].notna()]
    # all histograms of one point and load, as one JSON object per record
    merged = found.groupby(keys, sort=False)["hdrh"].agg(
        lambda values: json.dumps(
            {f"{i}:{lane}": h for i, v in enumerate(values) for lane, h in json.loads(v).items()}
        )
    )
    rows["load_label"] = rows["load_label"].astype(str)
    lookup = merged.rename("trial_hdrh").reset_index()
    lookup["load_label"] = lookup["load_label"].astype(str)
    for key in ("replicas", "flows"):
        lookup[key] = lookup[key].astype(int)
        rows[key] = rows[key].astype(int)
    for key in ("frame_size", "direction", "run_id"):
        lookup[key] = lookup[key].astype(str)
        rows[key] = rows[key].astype(str)
    return rows.merge(lookup, on=keys, how="left")


def latency_table(
    runs: RunSet, run_id: str | None = None, throughput: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Latency per run, point and load: percentiles of the merged histograms.

    Columns: run_id, frame_size, flows, direction, replicas, load_label, load_pps,
    load_fraction_ndr, min_us, mean_us, p50_us, p90_us, p99_us, p999_us, max_us,
    samples, source ("hdr" when from histograms, "summary" when only the generator's
    own percentiles were stored; then the worst of the repeats is given).
    `throughput` is `throughput_table(runs)` when the caller has it already.
    """
    rows, hdr_columns = _latency_rows(runs, run_id)
    columns = [*LATENCY_KEYS, "load_label", "load_pps", "load_fraction_ndr", "p50_us", "p99_us"]
    if rows.empty:
        return pd.DataFrame(columns=columns)
    keys = [*LATENCY_KEYS, "load_label"]
    summary_columns = [
        f"latency_{name}"
        for name in ("min_us", "mean_us", "max_us", *PERCENTILES)
        if f"latency_{name}" in rows
    ]
    # only the columns used, so that grouping does not copy every stored field
    rows = rows[[*LATENCY_KEYS, "load_label", "load_pps", *summary_columns, *hdr_columns]].copy()
    rows["load_label"] = rows["load_label"].where(rows["load_label"].notna(), rows["load_pps"])
    per_row: list[list[str]] = [[] for _ in range(len(rows))]
    for column in hdr_columns:
        for i, value in enumerate(rows[column].tolist()):
            per_row[i].extend(_encodings(value))
    load = rows["load_pps"].to_numpy(dtype=float)
    summaries = {c: rows[c].to_numpy(dtype=float) for c in summary_columns}
    out = []
    groups = rows.groupby(keys, sort=False, dropna=False).indices
    for key, positions in groups.items():
        key_values: tuple[Any, ...] = key if isinstance(key, tuple) else (key,)
        record: dict[str, Any] = dict(zip(keys, key_values, strict=True))
        record["load_pps"] = float(load[positions].mean())
        encoded = list(dict.fromkeys(e for i in positions for e in per_row[i]))
        hist = merge_histograms(encoded, f"run {record['run_id']}")
        if hist is not None and hist.get_total_count() > 0:
            record.update(histogram_stats_us(hist), source="hdr")
        else:
            for column, values in summaries.items():
                picked = values[positions]
                picked = picked[~np.isnan(picked)]
                name = column.removeprefix("latency_")
                if picked.size == 0:
                    record[name] = math.nan
                else:  # the worst of the repeats
                    record[name] = float(picked.min() if name == "min_us" else picked.max())
            record["source"] = "summary"
        out.append(record)
    table = pd.DataFrame(out)
    for name in ("min_us", "mean_us", "max_us", *PERCENTILES, "samples"):
        if name not in table:  # the generator measured no latency at all
            table[name] = math.nan
    table["replicas"] = table["replicas"].astype(int)
    table["flows"] = table["flows"].astype(int)
    table["frame_size"] = table["frame_size"].astype(str)
    table = _with_ndr(throughput_table(runs, run_id) if throughput is None else throughput, table)
    return table.sort_values([*LATENCY_KEYS, "load_pps"]).reset_index(drop=True)


def _with_ndr(ndr: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
    if ndr.empty:
        table["load_fraction_ndr"] = np.nan
        return table
    merged = table.merge(
        ndr[[*LATENCY_KEYS, "ndr_pps"]], on=list(LATENCY_KEYS), how="left", validate="m:1"
    )
    merged["load_fraction_ndr"] = merged["load_pps"] / merged["ndr_pps"]
    return merged.drop(columns=["ndr_pps"])


def latency_at(table: pd.DataFrame, fraction: float, tolerance: float = 0.05) -> pd.DataFrame:
    """The rows measured within `tolerance` of `fraction` of NDR (one per point)."""
    if table.empty:
        return table
    near = table[(table["load_fraction_ndr"] - fraction).abs() <= tolerance]
    near = near.assign(_gap=(near["load_fraction_ndr"] - fraction).abs())
    return (
        near.sort_values("_gap")
        .groupby(list(LATENCY_KEYS), sort=True)
        .head(1)
        .drop(columns="_gap")
    )


def tail_growth(table: pd.DataFrame, limit: float = TAIL_GROWTH_LIMIT) -> pd.DataFrame:
    """Per point: p99 and p99.9 at the lightest and heaviest load, their ratios, a flag.

    The tail grows near NDR as queues build (for an M/M/1 queue the sojourn time scales
    with 1/(1 − ρ)); a p99 more than `limit` times its light-load value is flagged.
    """
    if table.empty:
        return pd.DataFrame(columns=[*LATENCY_KEYS, "p99_ratio", "tail_grows"])
    out = []
    for key, group in table.groupby(list(LATENCY_KEYS), sort=True):
        ordered = group.sort_values("load_pps")
        light, heavy = ordered.iloc[0], ordered.iloc[-1]
        p99_ratio = heavy["p99_us"] / light["p99_us"] if light["p99_us"] > 0 else math.nan
        p999_ratio = heavy["p999_us"] / light["p999_us"] if light["p999_us"] > 0 else math.nan
        out.append(
            {
                **dict(zip(LATENCY_KEYS, key, strict=True)),
                "light_load_fraction": light["load_fraction_ndr"],
                "heavy_load_fraction": heavy["load_fraction_ndr"],
                "p99_light_us": light["p99_us"],
                "p99_heavy_us": heavy["p99_us"],
                "p99_ratio": p99_ratio,
                "p999_ratio": p999_ratio,
                "tail_grows": bool(p99_ratio > limit),
            }
        )
    return pd.DataFrame(out)


__all__ = [
    "histogram_stats_us",
    "latency_at",
    "latency_table",
    "merge_histograms",
    "tail_growth",
]
