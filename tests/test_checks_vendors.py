"""The demo vendors' charts under the static checks: their intended flaws, which put
them on different tiers (vpp-router clean, stateful-firewall short of gold's share of
normal checks, cgnat failing essential ones)."""

from __future__ import annotations

from pathlib import Path

import pytest

from analysis.tiers import Performance, score
from bench.checks import records, run_static_checks, tier_rules
from bench.checks.artifacts import load_target
from bench.checks.registry import Status
from bench.profiles import TierProfile, load_profile

PROFILES = Path(__file__).resolve().parent.parent / "profiles"

# not passed, by vendor (dual-stack is skipped: the default tier profile does not ask)
EXPECTED = {
    "vpp-router": set(),
    "stateful-firewall": {"read-only-root-fs", "service-account", "pod-anti-affinity"},
    "cgnat": {
        "privileged",
        "privilege-escalation",
        "non-root",
        "read-only-root-fs",
        "service-account",
        "readiness-probe",
        "image-pinned",
        "recommended-labels",
        "resources",
        "pod-anti-affinity",
    },
}


@pytest.mark.parametrize("vendor", sorted(EXPECTED))
def test_vendor_chart_flaws(vendor: str) -> None:
    art = load_target(PROFILES / "cnfs" / f"{vendor}.yaml")
    results = run_static_checks(art)
    flawed = {r.id for r in results if r.status not in (Status.PASSED, Status.SKIPPED)}
    assert flawed == EXPECTED[vendor]
    assert {r.id for r in results if r.status is Status.SKIPPED} == {"dual-stack"}
    for r in results:
        if r.status is Status.FAILED:
            assert r.impacted and all(i.namespace == f"cnf-{vendor}" for i in r.impacted)


def test_static_flaws_alone_order_the_vendors() -> None:
    rules = tier_rules(load_profile(PROFILES / "tiers" / "default.yaml", TierProfile).profile)
    perfect = Performance(
        scaling_efficiency=1.0,
        top_replicas=4,
        latency_p99_us=1.0,
        disruption_lost_frames=0,
        disruption_outage_s=0.0,
        session_capacity=10**7,
    )
    tiers = {}
    for vendor in EXPECTED:
        results = run_static_checks(load_target(PROFILES / "cnfs" / f"{vendor}.yaml"))
        tiers[vendor] = score(records(results), perfect, rules).tier
    # with perfect performance, checks alone already separate the three
    assert tiers == {"vpp-router": "gold", "stateful-firewall": "silver", "cgnat": "not-so-great"}
