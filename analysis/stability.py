"""Stability flags: results that look unreliable, each with the reason and what to try.

- ``spread``: repeated searches of one point disagree (coefficient of variation of the
  conditional throughput above a threshold);
- ``generator-short``: the generator sent less than it was asked to, so a trial's load
  was not the intended load (RFC 2544 §26.1 measures at the *offered* rate; a short
  generator turns a search bound into a generator bound);
- ``noisy``: within one search, a lossy trial at a load more than 1 % below a loss-free
  trial of the same duration; loss is expected to grow with load (RFC 9971 §5.4 treats such
  inconsistent results as a sign of an unstable system under test);
- ``invalid-trials``: trials the generator could not complete;
- ``generator-warnings``: other warnings the generator raised.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from analysis.loader import RunSet
from analysis.scaling import throughput_samples

log = logging.getLogger(__name__)

FLAG_KEYS = ("run_id", "replicas", "frame_size", "flows", "direction")
FLAG_COLUMNS = (*FLAG_KEYS, "flag", "value", "threshold", "reason", "advice")
SPREAD_CV = 0.05
SHORT_FRACTION = 0.99
# inversions closer than twice the usual goal width (0.5 %) are within search resolution
NOISY_GAP = 0.01


def _point_key(row: Any) -> dict[str, Any]:
    return {key: row[key] for key in FLAG_KEYS}


def spread_flags(runs: RunSet, run_id: str | None, limit: float) -> list[dict[str, Any]]:
    samples = throughput_samples(runs, run_id)
    out: list[dict[str, Any]] = []
    if samples.empty:
        return out
    stats = samples.groupby(list(FLAG_KEYS), sort=True)["ndr_pps"].agg(["mean", "std", "size"])
    for key, row in stats.reset_index().iterrows():
        del key
        if row["size"] < 2 or not row["mean"] > 0:
            continue
        cv = float(row["std"] / row["mean"])
        if cv > limit:
            out.append(
                {
                    **_point_key(row),
                    "flag": "spread",
                    "value": cv,
                    "threshold": limit,
                    "reason": f"repeated searches disagree: NDR varies by {cv:.1%} "
                    f"(coefficient of variation over {int(row['size'])} searches)",
                    "advice": "lengthen the final trial duration, pin the CNF's cores, "
                    "or look for a noisy neighbour on the node",
                }
            )
    return out


TRIAL_COLUMNS = (
    *FLAG_KEYS, "kind", "valid", "invalid_reason", "intended_load_pps", "intended_duration_s",
    "achieved_tx_pps", "loss_ratio", "warnings", "search_id",
)  # fmt: skip


def _valid_trials(runs: RunSet, run_id: str | None) -> pd.DataFrame:
    """The trials of points (not learning or warm-up without one), only the columns used."""
    trials = runs.trials
    if trials.empty or "valid" not in trials:
        return pd.DataFrame()
    trials = trials[[c for c in TRIAL_COLUMNS if c in trials.columns]]
    if run_id is not None:
        trials = trials[trials["run_id"] == run_id]
    return trials[trials["replicas"].notna()]


def short_flags(trials: pd.DataFrame, limit: float) -> list[dict[str, Any]]:
    if trials.empty or "achieved_tx_pps" not in trials:
        return []
    valid = trials[trials["valid"].astype(bool) & trials["achieved_tx_pps"].notna()]
    ratio = valid["achieved_tx_pps"] / valid["intended_load_pps"]
    short = valid.assign(ratio=ratio)[ratio < limit]
    out = []
    for key, group in short.groupby(list(FLAG_KEYS), sort=True):
        worst = float(group["ratio"].min())
        out.append(
            {
                **dict(zip(FLAG_KEYS, key, strict=True)),
                "flag": "generator-short",
                "value": worst,
                "threshold": limit,
                "reason": f"{len(group)} trial(s) sent less than intended (worst "
                f"{worst:.1%} of the intended load); their loss measures the generator",
                "advice": "give the generator more cores or ports, use fewer streams, "
                "or cap the search's maximum load at what the generator reaches",
            }
        )
    return out


def noisy_flags(trials: pd.DataFrame, min_gap: float) -> list[dict[str, Any]]:
    if trials.empty or "kind" not in trials:
        return []
    search = trials[(trials["kind"] == "search") & trials["valid"].astype(bool)]
    search = search[search["loss_ratio"].notna()].copy()
    if search.empty:
        return []
    # one search per search id where the sweep gives one, else all of a point's searches
    search["search_id"] = search["search_id"].fillna("") if "search_id" in search else ""
    keys = [*FLAG_KEYS, "search_id", "intended_duration_s"]
    lossy = search["loss_ratio"] > 0
    zero_max = search[~lossy].groupby(keys)["intended_load_pps"].max().rename("zero_max")
    lossy_min = search[lossy].groupby(keys)["intended_load_pps"].min().rename("lossy_min")
    both = pd.concat([zero_max, lossy_min], axis=1, join="inner")
    bad = both[both["lossy_min"] < both["zero_max"] * (1.0 - min_gap)].reset_index()
    out = []
    for key, group in bad.groupby(list(FLAG_KEYS), sort=True):
        gap = float(np.max(1.0 - group["lossy_min"] / group["zero_max"]))
        out.append(
            {
                **dict(zip(FLAG_KEYS, key, strict=True)),
                "flag": "noisy",
                "value": gap,
                "threshold": 0.0,
                "reason": f"{len(group)} search(es) saw loss at a load up to {gap:.1%} below "
                "a loss-free load of the same trial duration",
                "advice": "look for periodic interference (housekeeping, CPU frequency "
                "changes, other tenants); lengthen trials or raise the exceed ratio",
            }
        )
    return out


def invalid_flags(trials: pd.DataFrame) -> list[dict[str, Any]]:
    if trials.empty:
        return []
    invalid = trials[~trials["valid"].astype(bool)]
    out = []
    for key, group in invalid.groupby(list(FLAG_KEYS), sort=True):
        reasons = sorted({str(r) for r in group["invalid_reason"].dropna()})
        out.append(
            {
                **dict(zip(FLAG_KEYS, key, strict=True)),
                "flag": "invalid-trials",
                "value": float(len(group)),
                "threshold": 0.0,
                "reason": f"{len(group)} trial(s) invalid: {'; '.join(reasons)[:200]}",
                "advice": "check the generator's ports and link state; invalid trials "
                "were retried and never counted as loss",
            }
        )
    return out


def warning_flags(trials: pd.DataFrame) -> list[dict[str, Any]]:
    if trials.empty or "warnings" not in trials:
        return []
    warned = trials[trials["warnings"].fillna("").astype(str) != ""]
    if "achieved_tx_pps" in warned:
        # warnings of short trials are reported by the generator-short flag
        ratio = warned["achieved_tx_pps"] / warned["intended_load_pps"]
        warned = warned[~(ratio < SHORT_FRACTION)]
    out = []
    for key, group in warned.groupby(list(FLAG_KEYS), sort=True):
        first = str(group["warnings"].iloc[0])
        out.append(
            {
                **dict(zip(FLAG_KEYS, key, strict=True)),
                "flag": "generator-warnings",
                "value": float(len(group)),
                "threshold": 0.0,
                "reason": f"{len(group)} trial(s) with generator warnings, e.g. {first[:160]}",
                "advice": "read the generator's log for the trial times",
            }
        )
    return out


def stability_flags(
    runs: RunSet,
    run_id: str | None = None,
    *,
    spread_cv: float = SPREAD_CV,
    short_fraction: float = SHORT_FRACTION,
    noisy_gap: float = NOISY_GAP,
) -> pd.DataFrame:
    """Every flag of the runs, one row each: point, flag, value, threshold, reason, advice."""
    trials = _valid_trials(runs, run_id)
    rows = [
        *spread_flags(runs, run_id, spread_cv),
        *short_flags(trials, short_fraction),
        *noisy_flags(trials, noisy_gap),
        *invalid_flags(trials),
        *warning_flags(trials),
    ]
    frame = pd.DataFrame(rows, columns=list(FLAG_COLUMNS))
    if not frame.empty:
        frame["replicas"] = frame["replicas"].astype(int)
        frame["flows"] = frame["flows"].astype(int)
        frame = frame.sort_values([*FLAG_KEYS, "flag"]).reset_index(drop=True)
    for row in frame.itertuples():
        log.debug("stability flag %s at %s: %s", row.flag, row.replicas, row.reason)
    return frame
