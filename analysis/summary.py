"""The run summary printed at the end of a run: one row per replica count and point."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.errors import AnalysisError
from analysis.latency import latency_at, latency_table
from analysis.loader import RunSet
from analysis.scaling import throughput_table
from analysis.sessions import session_table
from traffic.errors import UnitError
from traffic.units import parse_frame_size, pps_to_l1_bps

SUMMARY_COLUMNS = (
    "replicas",
    "frame_size",
    "flows",
    "direction",
    "ndr_mpps",
    "pdr_mpps",
    "ndr_gbps",
    "pdr_gbps",
    "efficiency",
    "p50_us_at_50",
    "p99_us_at_50",
    "p50_us_at_90",
    "p99_us_at_90",
    "session_capacity_flows",
)


def l1_gbps(rate_pps: float, frame_size: str) -> float:
    """Line (L1) bit rate in Gbit/s: frames plus preamble, SFD and inter-frame gap."""
    try:
        size = parse_frame_size(frame_size)
    except UnitError:
        return float("nan")
    return pps_to_l1_bps(rate_pps, size) / 1e9


def run_summary(runs: RunSet, run_id: str) -> pd.DataFrame:
    """Per replica count and point of `run_id`: NDR and PDR in Mpps and L1 Gbps, scaling
    efficiency of NDR against one replica, latency p50/p99 at 50 % and 90 % of NDR, and
    session capacity.  Missing measurements are NaN."""
    if run_id not in runs.manifests:
        raise AnalysisError(f"run {run_id} is not among the loaded runs")
    table = throughput_table(runs, run_id)
    if table.empty:
        return pd.DataFrame(columns=list(SUMMARY_COLUMNS))
    out = table[["replicas", "frame_size", "flows", "direction"]].copy()
    out["ndr_mpps"] = table["ndr_pps"] / 1e6
    out["pdr_mpps"] = table["pdr_pps"] / 1e6
    out["ndr_gbps"] = [
        l1_gbps(x, f) for x, f in zip(table["ndr_pps"], table["frame_size"], strict=True)
    ]
    out["pdr_gbps"] = [
        l1_gbps(x, f) for x, f in zip(table["pdr_pps"], table["frame_size"], strict=True)
    ]
    out["efficiency"] = table["efficiency_ndr"]

    keys = ["replicas", "frame_size", "flows", "direction"]
    latency = latency_table(runs, run_id)
    for fraction, tag in ((0.5, "50"), (0.9, "90")):
        near = latency_at(latency, fraction)
        columns = {"p50_us": f"p50_us_at_{tag}", "p99_us": f"p99_us_at_{tag}"}
        if near.empty:
            for column in columns.values():
                out[column] = np.nan
            continue
        picked = near[[*keys, "p50_us", "p99_us"]].rename(columns=columns)
        out = out.merge(picked, on=keys, how="left")

    sessions = session_table(runs, run_id)
    if sessions.empty:
        out["session_capacity_flows"] = np.nan
    else:
        capacity = sessions.groupby("replicas")["session_capacity_flows"].min()
        out["session_capacity_flows"] = out["replicas"].map(capacity)
    return out.reindex(columns=list(SUMMARY_COLUMNS)).reset_index(drop=True)
