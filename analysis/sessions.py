"""Session capacity: the most concurrent flows the CNF held, per replica count.

Session capacity scales like throughput; its efficiency is C(R) / (R · C(1)).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.loader import RunSet

SESSION_KEYS = ("run_id", "frame_size", "direction", "replicas")


def session_table(runs: RunSet, run_id: str | None = None) -> pd.DataFrame:
    """Columns: run_id, frame_size, direction, replicas, n, session_capacity_flows
    (the smallest of repeated measurements), per_replica_flows, efficiency."""
    points = runs.points
    columns = [*SESSION_KEYS, "n", "session_capacity_flows", "per_replica_flows", "efficiency"]
    if points.empty or "measure" not in points or "session_capacity_flows" not in points:
        return pd.DataFrame(columns=columns)
    rows = points[points["measure"] == "sessions"]
    if run_id is not None:
        rows = rows[rows["run_id"] == run_id]
    if rows.empty:
        return pd.DataFrame(columns=columns)
    rows = rows.assign(
        replicas=rows["replicas"].astype(int), frame_size=rows["frame_size"].astype(str)
    )
    # A capacity is what the CNF held every time: the minimum of repeated measurements.
    table = (
        rows.groupby(list(SESSION_KEYS), sort=True)
        .agg(
            n=("session_capacity_flows", "size"),
            session_capacity_flows=("session_capacity_flows", "min"),
        )
        .reset_index()
    )
    table["per_replica_flows"] = table["session_capacity_flows"] / table["replicas"]
    keys = ["run_id", "frame_size", "direction"]
    one = table[table["replicas"] == 1].set_index(keys)["session_capacity_flows"].to_dict()
    base = np.asarray(table.set_index(keys).index.map(one), dtype=float)
    table["efficiency"] = table["session_capacity_flows"] / (table["replicas"] * base)
    return table
