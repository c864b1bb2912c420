"""Tier scoring: which tier a run reaches, and what blocked the next one.

Pure functions over plain data: check results as records (the mappings in
``checks.json``), performance figures, and tier rules built from a tier profile's
mapping.  Tiers are cumulative: a run reaches silver only if it also meets bronze.
Below bronze it is "not-so-great".

Requirements, per tier:

- checks: every applicable essential check passed (a skipped check is not
  applicable; an error counts as not passed), and at least ``normal_share`` of the
  applicable normal checks passed; bonus checks never block;
- performance: scaling efficiency E(R) = T(R) / (R · T(1)) of NDR at the top of the
  replica ladder at least ``scaling_efficiency_min``; latency p99 at 90 % of NDR at most
  ``latency_p99_us_max``; frames lost and outage time in the worst disruption event at
  most ``disruption_lost_frames_max`` and ``disruption_outage_s_max``; session capacity
  at least ``session_capacity_min``.  A figure that was not measured blocks every
  requirement on it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import pandas as pd

from analysis.errors import AnalysisError
from analysis.loader import RunSet
from analysis.scaling import CEILING_FRACTION, throughput_table
from analysis.summary import run_summary

TIERS_SCHEMA_VERSION = 1
NOT_SO_GREAT = "not-so-great"
TIER_ORDER = (NOT_SO_GREAT, "bronze", "silver", "gold")


@dataclass(frozen=True)
class TierRequirements:
    name: str
    essential_all: bool = True
    normal_share: float = 0.0
    scaling_efficiency_min: float | None = None
    latency_p99_us_max: float | None = None
    disruption_lost_frames_max: int | None = None
    disruption_outage_s_max: float | None = None
    session_capacity_min: int | None = None


@dataclass(frozen=True)
class TierRules:
    name: str
    tiers: tuple[TierRequirements, ...]

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> TierRules:
        """From a tier profile as a mapping (``TierProfile.model_dump()``)."""
        tiers = []
        for spec in data.get("tiers") or ():
            checks = spec.get("checks") or {}
            perf = spec.get("performance") or {}
            tiers.append(
                TierRequirements(
                    name=str(spec["name"]),
                    essential_all=checks.get("essential", "all") == "all",
                    normal_share=float(checks.get("normal_share", 0.0)),
                    scaling_efficiency_min=perf.get("scaling_efficiency_min"),
                    latency_p99_us_max=perf.get("latency_p99_us_max"),
                    disruption_lost_frames_max=perf.get("disruption_lost_frames_max"),
                    disruption_outage_s_max=perf.get("disruption_outage_s_max"),
                    session_capacity_min=perf.get("session_capacity_min"),
                )
            )
        names = [t.name for t in tiers]
        if not names or names != [n for n in TIER_ORDER[1:] if n in names]:
            raise AnalysisError(
                f"tier profile {data.get('name')!r}: tiers must be among bronze, silver, gold, "
                f"in that order; got {names}"
            )
        return cls(str(data.get("name", "")), tuple(tiers))


@dataclass(frozen=True)
class Performance:
    """The run's figures that tiers judge.  None: not measured."""

    scaling_efficiency: float | None = None  # E(R) of NDR at the top of the ladder
    top_replicas: int | None = None
    latency_p99_us: float | None = None  # worst p99 at 90 % of NDR
    disruption_lost_frames: int | None = None  # worst disruption event
    disruption_outage_s: float | None = None
    session_capacity: int | None = None


@dataclass(frozen=True)
class Requirement:
    """One requirement of one tier, with what was measured and whether it was met."""

    tier: str
    requirement: str
    required: str
    measured: float | str | None
    met: bool
    message: str


@dataclass(frozen=True)
class TierScore:
    tier: str
    next_tier: str | None
    blockers: tuple[Requirement, ...]  # every unmet requirement of `next_tier`
    requirements: tuple[Requirement, ...]  # every requirement of every tier
    rules: str
    performance: Performance = field(default_factory=Performance)
    check_counts: Mapping[str, Mapping[str, int]] = field(default_factory=dict)

    def reached(self, tier: str) -> bool:
        if tier not in TIER_ORDER:
            raise AnalysisError(f"no tier {tier!r}; tiers are {', '.join(TIER_ORDER)}")
        return TIER_ORDER.index(self.tier) >= TIER_ORDER.index(tier)

    def to_document(self) -> dict[str, Any]:
        """The body of ``tiers.json`` (schema ``tiers``)."""
        return {
            "schema_version": TIERS_SCHEMA_VERSION,
            "rules": self.rules,
            "tier": self.tier,
            "next_tier": self.next_tier,
            "blockers": [asdict(r) for r in self.blockers],
            "requirements": [asdict(r) for r in self.requirements],
            "performance": _finite(asdict(self.performance)),
            "checks": {k: dict(v) for k, v in self.check_counts.items()},
        }


def _finite(values: Mapping[str, Any]) -> dict[str, Any]:
    return {
        k: (None if isinstance(v, float) and not math.isfinite(v) else v)
        for k, v in values.items()
    }


# --- checks ----------------------------------------------------------------------------

APPLICABLE = ("passed", "failed", "error")


def check_counts(results: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {
        w: {s: 0 for s in ("passed", "failed", "skipped", "error")}
        for w in ("essential", "normal", "bonus")
    }
    for r in results:
        weight, status = str(r["weight"]), str(r["status"])
        if weight not in counts or status not in counts[weight]:
            raise AnalysisError(f"check {r.get('id')}: unknown weight or status {weight}/{status}")
        counts[weight][status] += 1
    return counts


def _check_requirements(
    tier: TierRequirements, results: Sequence[Mapping[str, Any]]
) -> list[Requirement]:
    out = []
    if tier.essential_all:
        bad = sorted(
            str(r["id"])
            for r in results
            if r["weight"] == "essential" and r["status"] in ("failed", "error")
        )
        total = sum(1 for r in results if r["weight"] == "essential" and r["status"] in APPLICABLE)
        message = (
            f"essential checks not passed: {', '.join(bad)}"
            if bad
            else f"all {total} applicable essential checks passed"
        )
        out.append(
            Requirement(
                tier.name,
                "essential checks",
                "all passed",
                f"{total - len(bad)}/{total}",
                not bad,
                message,
            )
        )
    if tier.normal_share > 0:
        normal = [r for r in results if r["weight"] == "normal" and r["status"] in APPLICABLE]
        good = sum(1 for r in normal if r["status"] == "passed")
        share = good / len(normal) if normal else 1.0
        met = share >= tier.normal_share - 1e-12
        failing = sorted(str(r["id"]) for r in normal if r["status"] != "passed")
        message = f"{good} of {len(normal)} applicable normal checks passed ({share:.0%})"
        if not met:
            message += f"; not passed: {', '.join(failing)}"
        out.append(
            Requirement(
                tier.name,
                "normal checks passed",
                f">= {tier.normal_share:.0%}",
                round(share, 4),
                met,
                message,
            )
        )
    return out


# --- performance -----------------------------------------------------------------------


def _bound(
    tier: str,
    what: str,
    limit: float | None,
    value: float | None,
    *,
    most: bool,
    unit: str = "",
    fmt: str = ".0f",
) -> Requirement | None:
    """A lower (``most=False``) or upper bound on one figure; None when the tier sets none."""
    if limit is None:
        return None
    required = f"{'<=' if most else '>='} {limit:{fmt}}{unit}"
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return Requirement(tier, what, required, None, False, f"{what}: not measured")
    met = value <= limit if most else value >= limit
    rel = ("<=" if met else ">") if most else (">=" if met else "<")
    message = f"{what} {value:{fmt}}{unit} {rel} {limit:{fmt}}{unit}"
    return Requirement(tier, what, required, value, met, message)


def _performance_requirements(tier: TierRequirements, perf: Performance) -> list[Requirement]:
    name = tier.name
    top = f" at {perf.top_replicas} replicas" if perf.top_replicas else ""
    items = [
        _bound(
            name,
            f"scaling efficiency{top}",
            tier.scaling_efficiency_min,
            perf.scaling_efficiency,
            most=False,
            fmt=".1%",
        ),
        _bound(
            name,
            "latency p99 at 90% of NDR",
            tier.latency_p99_us_max,
            perf.latency_p99_us,
            most=True,
            unit=" us",
            fmt=".1f",
        ),
        _bound(
            name,
            "frames lost in disruption",
            tier.disruption_lost_frames_max,
            perf.disruption_lost_frames,
            most=True,
            unit=" frames",
        ),
        _bound(
            name,
            "outage in disruption",
            tier.disruption_outage_s_max,
            perf.disruption_outage_s,
            most=True,
            unit=" s",
            fmt=".3f",
        ),
        _bound(
            name,
            "session capacity",
            tier.session_capacity_min,
            perf.session_capacity,
            most=False,
            unit=" flows",
        ),
    ]
    return [r for r in items if r is not None]


# --- scoring ---------------------------------------------------------------------------


def score(
    checks: Iterable[Mapping[str, Any]], performance: Performance, rules: TierRules
) -> TierScore:
    """The tier reached under `rules`, and every unmet requirement of the next tier."""
    results = list(checks)
    reached = NOT_SO_GREAT
    every: list[Requirement] = []
    blockers: tuple[Requirement, ...] = ()
    next_tier: str | None = None
    still_climbing = True
    for tier in rules.tiers:
        reqs = _check_requirements(tier, results) + _performance_requirements(tier, performance)
        every += reqs
        unmet = tuple(r for r in reqs if not r.met)
        if still_climbing and not unmet:
            reached = tier.name
        elif still_climbing:
            still_climbing = False
            next_tier = tier.name
            blockers = unmet
    return TierScore(
        reached, next_tier, blockers, tuple(every), rules.name, performance, check_counts(results)
    )


def performance_from_summary(
    summary: pd.DataFrame,
    disruption_lost_frames: int | None = None,
    disruption_outage_s: float | None = None,
) -> Performance:
    """Tier figures from a run summary (`analysis.summary.run_summary`): the worst
    efficiency and session capacity at the top replica count, the worst p99 at 90 % of
    NDR over every point, and the worst disruption event given by the caller."""
    if summary.empty:
        return Performance(
            disruption_lost_frames=disruption_lost_frames, disruption_outage_s=disruption_outage_s
        )
    top = int(summary["replicas"].max())
    at_top = summary[summary["replicas"] == top]
    efficiency = _worst(at_top.get("efficiency"), min)
    p99 = _worst(summary.get("p99_us_at_90"), max)
    sessions = _worst(at_top.get("session_capacity_flows"), min)
    return Performance(
        scaling_efficiency=efficiency if top > 1 else None,
        top_replicas=top,
        latency_p99_us=p99,
        disruption_lost_frames=disruption_lost_frames,
        disruption_outage_s=disruption_outage_s,
        session_capacity=int(sessions) if sessions is not None else None,
    )


def _worst(column: pd.Series | None, pick: Any) -> float | None:
    if column is None:
        return None
    values = [float(v) for v in column if v is not None and not pd.isna(v)]
    return float(pick(values)) if values else None


def performance_from_runs(
    runs: RunSet,
    run_id: str,
    disruption_lost_frames: int | None = None,
    disruption_outage_s: float | None = None,
) -> Performance:
    """Tier figures of one stored run, as `performance_from_summary` gives them, except
    that scaling efficiency leaves out points that reached the NIC line rate (at least
    `analysis.scaling.CEILING_FRACTION` of it): there the generator's ports, not the
    CNF, set the throughput.  Each point then counts at the largest replica count below
    the ceiling (above one replica); the worst of them is the run's figure."""
    perf = performance_from_summary(
        run_summary(runs, run_id), disruption_lost_frames, disruption_outage_s
    )
    table = throughput_table(runs, run_id)
    if table.empty or "line_rate_pps" not in table:
        return perf
    line = table["line_rate_pps"].astype(float)
    below = table[~(table["ndr_pps"] >= CEILING_FRACTION * line) & (table["replicas"] > 1)]
    below = below[below["efficiency_ndr"].notna()]
    if below.empty:
        return replace(perf, scaling_efficiency=None)
    keys = ["frame_size", "flows", "direction"]
    top = below.sort_values("replicas").groupby(keys).tail(1)
    worst = top.sort_values("efficiency_ndr").iloc[0]
    return replace(
        perf,
        scaling_efficiency=float(worst["efficiency_ndr"]),
        top_replicas=int(worst["replicas"]),
    )


# --- for reports -----------------------------------------------------------------------


def tier_statement(document: Mapping[str, Any]) -> str:
    """One sentence for a report: the tier reached and, when there is a next tier,
    every requirement that blocked it with the measured value."""
    tier = str(document["tier"])
    rules = document.get("rules") or "the tier profile"
    nxt = document.get("next_tier")
    if not nxt:
        return f"Reached {tier}, the top tier of {rules}."
    reasons = "; ".join(str(b["message"]) for b in document.get("blockers") or ())
    return f"Reached {tier} under {rules}; {nxt} was blocked by: {reasons}."


def requirement_rows(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every requirement of every tier from ``tiers.json``, as table rows."""
    return [
        {
            "tier": r["tier"],
            "requirement": r["requirement"],
            "required": r["required"],
            "measured": r["measured"],
            "met": "yes" if r["met"] else "no",
            "detail": r["message"],
        }
        for r in document.get("requirements") or ()
    ]


def check_rows(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every check result from ``checks.json``, as table rows (failures first)."""
    order = {"failed": 0, "error": 1, "skipped": 2, "passed": 3}
    rows = []
    for r in sorted(document.get("results") or (), key=lambda r: (order[r["status"]], r["id"])):
        impacted = [
            "/".join(p for p in (i["kind"], i["namespace"], i["name"], i["container"]) if p)
            for i in r.get("impacted") or ()
        ]
        rows.append(
            {
                "check": r["id"],
                "category": r["category"],
                "weight": r["weight"],
                "status": r["status"],
                "message": r["message"],
                "impacted": ", ".join(impacted),
            }
        )
    return rows
