"""Functional conformance checks: registry, artifacts, static, runtime and disruption.

Importing this package registers every check.  The entry points other parts call:

- `all_checks()`, `get_check(id)`: the registry;
- `run_static_checks(artifacts, ...)`: the checks that need only the artifacts;
- `run_runtime_checks(ctx)`: the checks that need a cluster;
- `measure_disruption(ctx)`: lifecycle events under traffic, as check results;
- `tier_rules(profile)`: a tier profile as the rules `analysis.tiers.score` applies.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from analysis.tiers import TierRules
from bench.checks import disruption, runtime, static
from bench.checks.artifacts import Artifacts, load_target
from bench.checks.context import DEFAULT_K8S_VERSION, CheckContext, DisruptionLimits
from bench.checks.registry import (
    Check,
    CheckResult,
    Need,
    Status,
    Weight,
    checks_document,
    lookup,
    registered,
    run_checks,
)
from bench.profiles import TierProfile

__all__ = [
    "Artifacts",
    "CheckContext",
    "CheckResult",
    "DisruptionLimits",
    "Status",
    "all_checks",
    "checks_document",
    "disruption",
    "essential_failures",
    "get_check",
    "load_target",
    "measure_disruption",
    "run_runtime_checks",
    "run_static_checks",
    "runtime",
    "static",
    "tier_rules",
]


def all_checks() -> list[Check]:
    return registered()


def get_check(check_id: str) -> Check:
    return lookup(check_id)


def checks_needing(need: Need) -> list[Check]:
    """Checks whose most demanding need is `need` (static < cluster < generator)."""
    order = [Need.ARTIFACTS, Need.CLUSTER, Need.GENERATOR]
    return [c for c in all_checks() if max(c.needs, key=order.index) is need]


def run_static_checks(
    artifacts: Artifacts,
    *,
    k8s_version: str = DEFAULT_K8S_VERSION,
    require_dual_stack: bool = False,
    allowed_ips: Iterable[str] = (),
    only: Iterable[str] | None = None,
) -> list[CheckResult]:
    """Every static check on `artifacts`, in registry order (or just the `only` ids)."""
    ctx = CheckContext(
        artifacts=artifacts,
        namespace=artifacts.namespace,
        k8s_version=k8s_version,
        require_dual_stack=require_dual_stack,
        allowed_ips=tuple(allowed_ips),
    )
    return run_checks(_select(checks_needing(Need.ARTIFACTS), only), ctx)


def run_runtime_checks(ctx: CheckContext, only: Iterable[str] | None = None) -> list[CheckResult]:
    """Every check that needs a cluster (and no generator), on the installed CNF."""
    return run_checks(_select(checks_needing(Need.CLUSTER), only), ctx)


def measure_disruption(ctx: CheckContext, only: Iterable[str] | None = None) -> list[CheckResult]:
    """Pod deletion, rolling update and scale-in under continuous traffic at
    ``ctx.load_fraction`` of ``ctx.ndr_pps``; each result's figures hold
    ``lost_frames``, ``outage_s`` and the rest (see `bench.checks.disruption`)."""
    return run_checks(_select(checks_needing(Need.GENERATOR), only), ctx)


def _select(checks: list[Check], only: Iterable[str] | None) -> list[Check]:
    if only is None:
        return checks
    wanted = set(only)
    for check_id in wanted:
        lookup(check_id)  # an unknown id is an input error
    return [c for c in checks if c.id in wanted]


def essential_failures(results: Iterable[CheckResult]) -> list[CheckResult]:
    return [
        r
        for r in results
        if r.check.weight is Weight.ESSENTIAL and r.status in (Status.FAILED, Status.ERROR)
    ]


def tier_rules(profile: TierProfile) -> TierRules:
    return TierRules.from_mapping(profile.model_dump())


def disruption_limits(profile: TierProfile, tier: str | None = None) -> DisruptionLimits:
    """The disruption limits of `tier`, or of the lowest tier that sets any."""
    for spec in profile.tiers:
        perf = spec.performance
        has = perf.disruption_lost_frames_max is not None or perf.disruption_outage_s_max
        if (tier is None and has) or spec.name == tier:
            return DisruptionLimits(perf.disruption_lost_frames_max, perf.disruption_outage_s_max)
    return DisruptionLimits()


def records(results: Iterable[CheckResult]) -> list[dict[str, Any]]:
    """Results as the mappings `analysis.tiers.score` and the journal take."""
    return [r.to_record() for r in results]
