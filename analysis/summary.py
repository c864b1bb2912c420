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
    throughput = throughput_table(runs, run_id)
    latency = latency_table(runs, run_id, throughput)
    summary = summary_from_tables(throughput, latency, session_table(runs, run_id))
    return summary.drop(columns="run_id")


def summary_from_tables(
    throughput: pd.DataFrame, latency: pd.DataFrame, sessions: pd.DataFrame
) -> pd.DataFrame:
    """`run_summary` of every run in the tables at once, with a ``run_id`` column."""
    columns = ["run_id", *SUMMARY_COLUMNS]
    if throughput.empty:
        return pd.DataFrame(columns=columns)
    keys = ["run_id", "replicas", "frame_size", "flows", "direction"]
    out = throughput[keys].copy()
    out["ndr_mpps"] = throughput["ndr_pps"] / 1e6
    out["pdr_mpps"] = throughput["pdr_pps"] / 1e6
    frames = throughput["frame_size"]
    out["ndr_gbps"] = [l1_gbps(x, f) for x, f in zip(throughput["ndr_pps"], frames, strict=True)]
    out["pdr_gbps"] = [l1_gbps(x, f) for x, f in zip(throughput["pdr_pps"], frames, strict=True)]
    out["efficiency"] = throughput["efficiency_ndr"]

    for fraction, tag in ((0.5, "50"), (0.9, "90")):
        near = latency_at(latency, fraction)
        renamed = {"p50_us": f"p50_us_at_{tag}", "p99_us": f"p99_us_at_{tag}"}
        if near.empty:
            for column in renamed.values():
                out[column] = np.nan
            continue
        picked = near[[*keys, "p50_us", "p99_us"]].rename(columns=renamed)
        out = out.merge(picked, on=keys, how="left")

    if sessions.empty:
        out["session_capacity_flows"] = np.nan
    else:
        capacity = sessions.groupby(["run_id", "replicas"])["session_capacity_flows"].min()
        index = pd.MultiIndex.from_frame(out[["run_id", "replicas"]])
        out["session_capacity_flows"] = capacity.reindex(index).to_numpy()
    return out.reindex(columns=columns).reset_index(drop=True)
