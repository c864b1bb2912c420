"""Tier scoring: the tier reached, and every requirement that blocked the next one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from analysis.errors import AnalysisError
from analysis.tiers import Performance, TierRules, performance_from_summary, score
from bench.checks import tier_rules
from bench.profiles import TierProfile, load_profile
from bench.schemas import validate

PROFILES = Path(__file__).resolve().parent.parent / "profiles" / "tiers"


def rules() -> TierRules:
    return tier_rules(load_profile(PROFILES / "default.yaml", TierProfile).profile)


def checks(essential_failed: int = 0, normal: tuple[int, int] = (10, 0)) -> list[dict[str, Any]]:
    """Records: 5 essential (some failed), `normal` = (passed, failed), a failed bonus,
    and skipped checks of every weight, which must not count."""
    out = []
    for i in range(5):
        status = "failed" if i < essential_failed else "passed"
        out.append({"id": f"ess-{i}", "weight": "essential", "status": status})
    good, bad = normal
    out += [{"id": f"norm-{i}", "weight": "normal", "status": "passed"} for i in range(good)]
    out += [{"id": f"norm-bad-{i}", "weight": "normal", "status": "failed"} for i in range(bad)]
    out.append({"id": "bonus-0", "weight": "bonus", "status": "failed"})
    for weight in ("essential", "normal", "bonus"):
        out.append({"id": f"skip-{weight}", "weight": weight, "status": "skipped"})
    return out


GOLDEN = Performance(
    scaling_efficiency=0.95,
    top_replicas=4,
    latency_p99_us=50.0,
    disruption_lost_frames=1000,
    disruption_outage_s=0.2,
    session_capacity=1_000_000,
)


def test_everything_met_reaches_the_top_tier() -> None:
    result = score(checks(), GOLDEN, rules())
    assert result.tier == "gold"
    assert result.next_tier is None and result.blockers == ()
    assert all(r.met for r in result.requirements)
    assert result.reached("silver") and result.reached("gold")


def test_failed_essential_check_means_not_so_great() -> None:
    result = score(checks(essential_failed=2), GOLDEN, rules())
    assert result.tier == "not-so-great"
    assert result.next_tier == "bronze"
    (blocker,) = result.blockers
    assert blocker.requirement == "essential checks"
    assert blocker.measured == "3/5"
    assert "ess-0, ess-1" in blocker.message


def test_blockers_list_every_unmet_requirement_of_the_next_tier() -> None:
    perf = Performance(
        scaling_efficiency=0.80,  # silver needs 70 %, gold 85 %
        top_replicas=4,
        latency_p99_us=350.0,  # silver 500, gold 200
        disruption_lost_frames=60_000_000,  # gold 50 M
        disruption_outage_s=0.5,
        session_capacity=None,  # gold needs it measured
    )
    result = score(checks(normal=(9, 1)), perf, rules())  # 90 % of normal checks
    assert result.tier == "silver" and result.next_tier == "gold"
    blocked = {b.requirement: b for b in result.blockers}
    assert set(blocked) == {
        "scaling efficiency at 4 replicas",
        "latency p99 at 90% of NDR",
        "frames lost in disruption",
        "session capacity",
    }
    assert blocked["scaling efficiency at 4 replicas"].measured == pytest.approx(0.80)
    assert blocked["scaling efficiency at 4 replicas"].message == (
        "scaling efficiency at 4 replicas 80.0% < 85.0%"
    )
    assert blocked["latency p99 at 90% of NDR"].measured == 350.0
    assert blocked["frames lost in disruption"].measured == 60_000_000
    assert blocked["session capacity"].measured is None
    assert "not measured" in blocked["session capacity"].message
    assert all(b.tier == "gold" and not b.met for b in result.blockers)


def test_normal_share_counts_applicable_checks_only() -> None:
    # 3 of 4 applicable normal checks passed = 75 %: silver's share exactly, gold's not
    result = score(checks(normal=(3, 1)), GOLDEN, rules())
    assert result.tier == "silver"
    (blocker,) = result.blockers
    assert blocker.requirement == "normal checks passed"
    assert blocker.measured == 0.75
    assert "norm-bad-0" in blocker.message
    # an error counts against the share, like a failure
    records = [*checks(normal=(1, 0)), {"id": "e", "weight": "normal", "status": "error"}]
    assert score(records, GOLDEN, rules()).tier == "bronze"


def test_tiers_are_cumulative() -> None:
    # meets gold's performance but not bronze's normal share: still not-so-great
    result = score(checks(normal=(4, 6)), GOLDEN, rules())
    assert result.tier == "not-so-great"
    assert [b.requirement for b in result.blockers] == ["normal checks passed"]


def test_document_validates_against_the_schema() -> None:
    for perf in (GOLDEN, Performance()):
        doc = score(checks(normal=(9, 1)), perf, rules()).to_document()
        validate("tiers", doc, "tiers.json")
    doc = score(checks(), Performance(scaling_efficiency=float("nan")), rules()).to_document()
    assert doc["performance"]["scaling_efficiency"] is None
    validate("tiers", doc, "tiers.json")


def test_rules_must_be_ordered() -> None:
    with pytest.raises(AnalysisError, match="in that order"):
        TierRules.from_mapping({"name": "x", "tiers": [{"name": "gold"}, {"name": "bronze"}]})
    with pytest.raises(AnalysisError, match="unknown weight"):
        score([{"id": "x", "weight": "heavy", "status": "passed"}], GOLDEN, rules())


def test_performance_from_summary_takes_the_worst_at_the_top() -> None:
    summary = pd.DataFrame(
        {
            "replicas": [1, 1, 4, 4],
            "efficiency": [1.0, 1.0, 0.9, 0.7],
            "p99_us_at_90": [40.0, 300.0, 80.0, float("nan")],
            "session_capacity_flows": [1e5, 1e5, 4e5, 3e5],
        }
    )
    perf = performance_from_summary(summary, disruption_lost_frames=5, disruption_outage_s=0.1)
    assert perf.top_replicas == 4
    assert perf.scaling_efficiency == pytest.approx(0.7)
    assert perf.latency_p99_us == 300.0
    assert perf.session_capacity == 300_000
    assert perf.disruption_lost_frames == 5
    assert performance_from_summary(pd.DataFrame()).scaling_efficiency is None


def test_performance_from_runs_leaves_out_points_at_the_nic_ceiling(tmp_path: Path) -> None:
    import analysis
    from analysis.scaling import CEILING_FRACTION, throughput_table
    from analysis.synthetic import DEMO_VENDORS, SyntheticSpec
    from analysis.tiers import performance_from_runs
    from tests.analysis_runs import write_spec

    vpp = next(v for v in DEMO_VENDORS if v.cnf == "vpp-router")
    run_dir = write_spec(tmp_path, SyntheticSpec(vendor=vpp, replicas=(1, 2, 4), repeats=1))
    runs = analysis.load_runs(run_dir)
    (run_id,) = runs.manifests
    table = throughput_table(runs, run_id)
    ceiling = table["ndr_pps"] >= CEILING_FRACTION * table["line_rate_pps"]
    assert ceiling.any() and not ceiling.all()  # IMIX meets the NIC, 64-byte frames do not

    perf = performance_from_runs(runs, run_id, disruption_lost_frames=7, disruption_outage_s=0.5)
    counted = table[~ceiling & (table["replicas"] > 1)]
    assert perf.scaling_efficiency is not None
    assert perf.scaling_efficiency == pytest.approx(counted["efficiency_ndr"].min())
    assert perf.scaling_efficiency >= 0.85  # the NIC-bound IMIX points no longer drag it down
    assert perf.disruption_lost_frames == 7 and perf.disruption_outage_s == 0.5
    assert perf.latency_p99_us is not None and perf.session_capacity is not None


def test_report_helpers_state_the_tier_and_its_reasons() -> None:
    from analysis.tiers import check_rows, requirement_rows, tier_statement

    perf = Performance(scaling_efficiency=0.8, top_replicas=4, latency_p99_us=50.0)
    doc = score(checks(normal=(9, 1)), perf, rules()).to_document()
    text = tier_statement(doc)
    assert text.startswith("Reached bronze under default; silver was blocked by: ")
    assert "outage in disruption: not measured" in text
    rows = requirement_rows(doc)
    assert len(rows) == len(doc["requirements"]) and {r["met"] for r in rows} == {"yes", "no"}
    top = score(checks(), GOLDEN, rules()).to_document()
    assert tier_statement(top) == "Reached gold, the top tier of default."
    results = {
        "results": [
            {"id": "b", "category": "security", "weight": "normal", "status": "passed",
             "message": "ok", "impacted": []},
            {"id": "a", "category": "security", "weight": "essential", "status": "failed",
             "message": "bad", "impacted": [
                 {"kind": "Deployment", "namespace": "ns", "name": "d", "container": "c"}]},
        ]
    }  # fmt: skip
    assert [(r["check"], r["impacted"]) for r in check_rows(results)] == [
        ("a", "Deployment/ns/d/c"),
        ("b", ""),
    ]
