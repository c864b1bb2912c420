"""Tidy tables from journal records: one row per trial, per point, per check, per stage.

The store compacts a journal into Parquet with these functions, and the loader rebuilds
the same tables from a journal when the Parquet files are missing or stale.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

LATENCY_FIELDS = ("min_us", "mean_us", "max_us", "p50_us", "p90_us", "p99_us", "p999_us")
POINT_KEYS = ("replicas", "frame_size", "flows", "direction")


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, Mapping):
        for key, inner in value.items():
            _flatten(f"{prefix}_{key}" if prefix else str(key), inner, out)
    elif isinstance(value, list | tuple):
        out[prefix] = json.dumps(value, sort_keys=True)
    else:
        out[prefix] = value


def trial_row(record: Mapping[str, Any]) -> dict[str, Any]:
    """One trial record as a flat row; latency columns give the worst direction."""
    row: dict[str, Any] = {}
    for key, value in record.items():
        if key in ("latency", "lanes", "point", "warnings", "extra"):
            continue
        row[key] = value
    point = record.get("point") or {}
    for key in POINT_KEYS:
        row[key] = point.get(key)
    lanes = record.get("lanes") or []
    row["lanes"] = json.dumps(lanes, sort_keys=True)
    row["warnings"] = "; ".join(record.get("warnings") or [])
    latency: Mapping[str, Mapping[str, Any]] = record.get("latency") or {}
    for name in LATENCY_FIELDS:
        values = [lat[name] for lat in latency.values() if lat.get(name) is not None]
        if not values:
            row[f"latency_{name}"] = None
        elif name == "min_us":
            row[f"latency_{name}"] = min(values)
        elif name == "mean_us":
            row[f"latency_{name}"] = sum(values) / len(values)
        else:
            row[f"latency_{name}"] = max(values)
    row["latency_samples"] = sum(int(lat.get("samples") or 0) for lat in latency.values())
    hdrh = {lane: lat.get("hdrh") for lane, lat in latency.items() if lat.get("hdrh")}
    row["hdrh"] = json.dumps(hdrh, sort_keys=True) if hdrh else None
    for key, value in (record.get("extra") or {}).items():
        _flatten(str(key), value, row)
    return row


def generic_row(record: Mapping[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for key, value in record.items():
        if key == "point" and isinstance(value, Mapping):
            for pk in POINT_KEYS:
                row[pk] = value.get(pk)
            continue
        _flatten(str(key), value, row)
    return row


def _frame(rows: Iterable[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(list(rows))
    # object columns mixing None and numbers become float; strings stay objects
    return frame


def tables_from_records(records: Iterable[Mapping[str, Any]]) -> dict[str, pd.DataFrame]:
    by_type: dict[str, list[dict[str, Any]]] = {
        "trial": [],
        "point": [],
        "check": [],
        "stage": [],
        "event": [],
    }
    for record in records:
        kind = record.get("type")
        if kind == "trial":
            by_type["trial"].append(trial_row(record))
        elif kind in by_type:
            by_type[str(kind)].append(generic_row(record))
    return {
        "trials": _frame(by_type["trial"]),
        "points": _frame(by_type["point"]),
        "checks": _frame(by_type["check"]),
        "stages": _frame(by_type["stage"]),
        "events": _frame(by_type["event"]),
    }
