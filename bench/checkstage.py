"""The checks stage of a run, and the tier that follows from checks and measurements.

Checks run after the sweep, while the CNF is still installed: the static checks on its
rendered artifacts, the runtime checks on the cluster, and the disruption checks under
continuous traffic at a fraction of the NDR measured at the replica count the tier
profile names (the top of the ladder by default).  Each result is journaled as a
``check`` record; ``checks.json`` and ``checks.junit.xml`` are written when the stage
ends.  The tier is scored later, from the compacted results (`score_tier`).
"""

from __future__ import annotations

import io
import logging
from typing import TYPE_CHECKING, Any

import analysis
from analysis.tiers import performance_from_runs, score
from bench import checks
from bench.checks.artifacts import load_cnf_profile
from bench.checks.context import DEFAULT_K8S_VERSION
from bench.checks.junit import junit_tree
from bench.profiles import TierProfile
from bench.store import RunStore
from bench.sweep import point_streams

if TYPE_CHECKING:
    from bench.environment import Environment

log = logging.getLogger(__name__)

JUNIT_FILE = "checks.junit.xml"


def _disruption_context(env: Environment, tiers: TierProfile | None) -> dict[str, Any]:
    """Generator, streams and NDR for the disruption checks, at the chosen replicas."""
    traffic = env.bundle.traffic.profile
    spec = tiers.disruption if tiers else None
    replicas = (spec.replicas if spec else None) or max(env.cnf.replicas)
    frame, flows, direction = traffic.frame_sizes[0], traffic.flow_counts[0], traffic.directions[0]
    outcome = next(
        (
            o
            for o in env.sweep_results.values()
            if (o.point.replicas, o.point.frame_size, o.point.flows, o.point.direction)
            == (replicas, frame, flows, direction)
        ),
        None,
    )
    if outcome is None or not outcome.ndr_pps:
        log.warning("no NDR at %d replicas: disruption checks will be skipped", replicas)
        return {"replicas": replicas}
    env.workload.scale_to(replicas)
    streams = point_streams(outcome.point, env.workload, env.testbed.steering)
    return {
        "replicas": replicas,
        "generator": env.generator,
        "streams": streams,
        "ndr_pps": outcome.ndr_pps,
    }


def run_checks(env: Environment) -> None:
    store = env.store
    tiers = env.bundle.tiers.profile if env.bundle.tiers else None
    k8s_version = env.testbed.cluster.version or DEFAULT_K8S_VERSION
    dual_stack = bool(tiers and tiers.require_dual_stack)
    artifacts = load_cnf_profile(env.bundle.cnf.path, k8s_version=k8s_version)
    results = checks.run_static_checks(
        artifacts, k8s_version=k8s_version, require_dual_stack=dual_stack
    )
    disruption = _disruption_context(env, tiers)
    ctx = checks.CheckContext(
        artifacts=artifacts,
        namespace=env.cnf.namespace,
        workload_kind=env.cnf.workload.kind,
        workload_name=env.cnf.workload.name,
        k8s_version=k8s_version,
        require_dual_stack=dual_stack,
        cluster=env.cluster,
        generator=disruption.get("generator"),
        streams=disruption.get("streams"),
        ndr_pps=disruption.get("ndr_pps"),
        load_fraction=tiers.disruption.load_fraction if tiers else 0.5,
        sample_interval_s=tiers.disruption.sample_interval if tiers else 0.1,
        limits=checks.disruption_limits(tiers) if tiers else checks.DisruptionLimits(),
    )
    results += checks.run_runtime_checks(ctx)
    results += checks.measure_disruption(ctx)
    records = checks.records(results)
    for record in records:
        store.append("check", **record)
    store.write_json("checks.json", checks.checks_document(results))
    tree = junit_tree(results, name=f"cnfbench {env.cnf.name}")
    store.write_bytes(JUNIT_FILE, _xml_bytes(tree))
    failed = checks.essential_failures(results)
    log.info(
        "checks: %d run, %d essential failures%s",
        len(results),
        len(failed),
        f" ({', '.join(r.check.id for r in failed)})" if failed else "",
    )


def _xml_bytes(tree: Any) -> bytes:
    buffer = io.BytesIO()
    tree.write(buffer, encoding="utf-8", xml_declaration=True)
    return buffer.getvalue()


def score_tier(store: RunStore, tiers: TierProfile) -> dict[str, Any]:
    """Score the run's tier from its stored results and write ``tiers.json``."""
    runs = analysis.load_runs(store.directory)
    run_id = store.run_id
    check_records = [r for r in store.records() if r["type"] == "check"]
    lost, outage = _worst_disruption(check_records)
    # scaling efficiency leaves out points that reached the NIC line rate
    performance = performance_from_runs(runs, run_id, lost, outage)
    result = score(check_records, performance, checks.tier_rules(tiers))
    document = result.to_document()
    store.write_json("tiers.json", document)
    return document


def _worst_disruption(records: list[dict[str, Any]]) -> tuple[int | None, float | None]:
    lost: list[int] = []
    outage: list[float] = []
    for record in records:
        figures = record.get("figures") or {}
        if figures.get("lost_frames") is not None:
            lost.append(int(figures["lost_frames"]))
        if figures.get("outage_s") is not None:
            outage.append(float(figures["outage_s"]))
    return (max(lost) if lost else None, max(outage) if outage else None)
