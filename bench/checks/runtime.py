"""Runtime checks: the installed CNF on its cluster.

They run in registry order, the observing ones first (so that the restart counts and
the running pods are those of the run, before any check replaces pods), then the ones
that act: scale, pod deletion, rolling update, rollback, liveness.  Each acting check
leaves the workload as it found it: same replica count, all replicas ready.
"""

from __future__ import annotations

import ipaddress
import logging
import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from bench.checks.artifacts import PodTemplate
from bench.checks.context import CheckContext
from bench.checks.kube import RESTARTED_AT, KubeView, pod_ready
from bench.checks.registry import (
    Category,
    Need,
    Outcome,
    Resource,
    Weight,
    check,
    failed,
    passed,
    skipped,
    verdict,
)
from bench.cluster import ClusterError

log = logging.getLogger(__name__)

CLUSTER = (Need.CLUSTER,)
SCRAPE_TIMEOUT_S = 5.0
PROMTOOL_TIMEOUT_S = 30.0


def view(ctx: CheckContext) -> KubeView:
    """The workload as the checks see it, from the context's cluster."""
    cluster = ctx.cluster
    if isinstance(cluster, KubeView):
        return cluster
    # bench.cluster.Cluster keeps its ApiClient as `api`
    api_client = getattr(cluster, "api", None) or getattr(cluster, "api_client", None)
    if api_client is None:
        raise ClusterError(f"{type(cluster).__name__} gives no kubernetes ApiClient")
    assert ctx.workload_name is not None
    return KubeView(
        api_client,
        ctx.namespace,
        ctx.workload_kind,
        ctx.workload_name,
        time_scale=getattr(cluster, "time_scale", None) or ctx.time_scale,
        poll_s=ctx.poll_s,
    )


def _pod(p: Mapping[str, Any], container: str | None = None) -> Resource:
    return Resource("Pod", p["metadata"].get("namespace"), p["metadata"]["name"], container)


def _workload(kube: KubeView) -> Resource:
    return Resource(kube.kind, kube.namespace, kube.name)


# --- observing -------------------------------------------------------------------------


@check(
    "no-restarts",
    title="No container restarts during the run",
    category=Category.STATELESSNESS,
    weight=Weight.NORMAL,
    needs=CLUSTER,
    overview="No container of the CNF restarted between the start of the run and the "
    "runtime checks.",
    rationale="A restart under load is a crash or a failed liveness probe: the data plane "
    "dropped traffic, and the measurements of that moment are not those of a steady CNF.",
    remediation="Read the container's previous log (`kubectl logs --previous`) and the "
    "pod's events; fix the crash or the probe.",
)
def no_restarts(ctx: CheckContext) -> Outcome:
    kube = view(ctx)
    before = ctx.restarts_at_start or {}
    problems: dict[Resource, list[str]] = {}
    now = kube.restarts()
    for key, count in sorted(now.items()):
        start = before.get(key, 0)
        if count > start:
            pod, container = key.split("/", 1)
            res = Resource("Pod", kube.namespace, pod, container)
            problems[res] = [f"restarted {count - start} time(s) during the run"]
    evidence = [f"{len(now)} containers observed"]
    return verdict(problems, "no container restarted", "containers restarted", evidence)


def _manifest_template(ctx: CheckContext) -> PodTemplate | None:
    if ctx.artifacts is None:
        return None
    for template in ctx.artifacts.pod_templates():
        owner = template.owner
        if owner.kind == ctx.workload_kind and owner.name == ctx.workload_name:
            return template
    return None


@check(
    "runtime-matches-manifests",
    title="What runs matches the manifests",
    category=Category.SECURITY,
    weight=Weight.ESSENTIAL,
    needs=CLUSTER,
    overview="The running pods are not privileged and share no host namespace, and their "
    "containers run the images and security settings the manifests asked for.",
    rationale="Admission webhooks, operators or a later `kubectl edit` can change what runs; "
    "certification judges what runs, not only what was shipped.",
    remediation="Find what mutated the pods (mutating webhooks, an operator) and make the "
    "running spec match the chart.",
)
def runtime_matches(ctx: CheckContext) -> Outcome:
    kube = view(ctx)
    template = _manifest_template(ctx)
    wanted: dict[str, Mapping[str, Any]] = {}
    if template is not None:
        wanted = {str(c.get("name")): c for c in template.containers()}
    problems: dict[Resource, list[str]] = {}
    pods = kube.live_pods()
    for p in pods:
        spec = p.get("spec") or {}
        for key in ("hostNetwork", "hostPID", "hostIPC"):
            if spec.get(key):
                problems.setdefault(_pod(p), []).append(f"runs with {key}")
        for c in [*(spec.get("initContainers") or ()), *(spec.get("containers") or ())]:
            name = str(c.get("name"))
            res = _pod(p, name)
            if (c.get("securityContext") or {}).get("privileged"):
                problems.setdefault(res, []).append("runs privileged")
            asked = wanted.get(name)
            if template is None:
                continue
            if asked is None:
                problems.setdefault(res, []).append("container not in the manifests")
            elif asked.get("image") != c.get("image"):
                problems.setdefault(res, []).append(
                    f"runs image {c.get('image')}, the manifests ask for {asked.get('image')}"
                )
    note = "compared with the manifests" if template is not None else "no manifests given"
    evidence = [f"{len(pods)} running pods, {note}"]
    return verdict(problems, "running pods match the manifests", "running pods differ", evidence)


@check(
    "logs-produced",
    title="Logs produced",
    category=Category.OBSERVABILITY,
    weight=Weight.NORMAL,
    needs=CLUSTER,
    overview="Every container of every ready pod has written to its log (stdout/stderr).",
    rationale="Logs on stdout are what the cluster's log pipeline collects; a CNF that logs "
    "only to files inside its container cannot be diagnosed by the operator.",
    remediation="Log to stdout and stderr, at least the start-up and configuration lines.",
)
def logs_produced(ctx: CheckContext) -> Outcome:
    kube = view(ctx)
    pods = kube.ready_pods()
    if not pods:
        return failed("no ready pod to read logs from", [_workload(kube)])
    problems: dict[Resource, list[str]] = {}
    evidence = []
    for p in pods:
        for c in (p.get("spec") or {}).get("containers") or ():
            text = kube.logs(p["metadata"]["name"], str(c["name"]), tail_lines=20)
            lines = [ln for ln in text.splitlines() if ln.strip()]
            if not lines:
                problems[_pod(p, str(c["name"]))] = ["the log is empty"]
            else:
                evidence.append(f"{_pod(p, str(c['name']))}: {lines[-1][:120]}")
    return verdict(problems, "every container logs", "containers with empty logs", evidence)


def scrape_url(pod: Mapping[str, Any], default_port: int | None, default_path: str) -> str | None:
    """The pod's metrics URL from the prometheus.io annotations (or the given defaults)."""
    annotations = pod["metadata"].get("annotations") or {}
    if annotations.get("prometheus.io/scrape") == "false":
        return None
    port = annotations.get("prometheus.io/port") or default_port
    path = annotations.get("prometheus.io/path") or default_path
    ip = (pod.get("status") or {}).get("podIP")
    if not port or not ip:
        return None
    host = f"[{ip}]" if ":" in ip else ip
    return f"http://{host}:{port}{path}"


def promtool_problems(text: str) -> list[str] | None:
    """``promtool check metrics`` on an exposition; None when promtool is not installed."""
    promtool = shutil.which("promtool")
    if promtool is None:
        return None
    proc = subprocess.run(
        [promtool, "check", "metrics"],
        input=text,
        capture_output=True,
        text=True,
        timeout=PROMTOOL_TIMEOUT_S,
        check=False,
    )
    lines = [ln.strip() for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip()]
    if proc.returncode == 0:
        return []
    return lines or [f"promtool exited {proc.returncode}"]


def parse_problems(text: str) -> tuple[int, list[str]]:
    """Metric families in an exposition, and why prometheus_client cannot parse it."""
    try:
        families = list(text_string_to_metric_families(text))
    except ValueError as exc:
        return 0, [f"not Prometheus text format: {exc}"]
    if not families:
        return 0, ["no metrics"]
    return len(families), []


@check(
    "metrics-endpoint",
    title="Prometheus metrics endpoint",
    category=Category.OBSERVABILITY,
    weight=Weight.NORMAL,
    needs=CLUSTER,
    overview="Every ready pod serves metrics (prometheus.io annotations) that parse as "
    "Prometheus text format with the prometheus_client parser and pass "
    "`promtool check metrics`.",
    rationale="Operators run network functions from their metrics: drops, rates and "
    "health per replica.  An endpoint that does not parse is as good as none.",
    remediation="Serve /metrics in the Prometheus exposition format and annotate the pod "
    "with prometheus.io/scrape, port and path.",
)
def metrics_endpoint(ctx: CheckContext) -> Outcome:
    kube = view(ctx)
    pods = kube.ready_pods()
    if not pods:
        return failed("no ready pod to scrape", [_workload(kube)])
    problems: dict[Resource, list[str]] = {}
    evidence = []
    for p in pods:
        res = _pod(p)
        url = scrape_url(p, ctx.metrics_port, ctx.metrics_path)
        if url is None:
            problems[res] = ["no metrics endpoint declared (prometheus.io/port)"]
            continue
        host = url.split("//", 1)[1].rsplit(":", 1)[0].strip("[]")
        if not ipaddress.ip_address(host).is_loopback:
            return skipped(f"pod addresses ({host}) are not reachable from the controller")
        try:
            with urllib.request.urlopen(url, timeout=SCRAPE_TIMEOUT_S) as response:
                text = response.read().decode("utf-8", errors="replace")
        except (urllib.error.URLError, OSError) as exc:
            problems[res] = [f"{url}: {exc}"]
            continue
        count, bad = parse_problems(text)
        lint = promtool_problems(text)
        if lint is None:
            evidence.append("promtool is not installed; parsed with prometheus_client only")
        problems_here = bad + [f"promtool: {ln}" for ln in lint or ()]
        if problems_here:
            problems[res] = problems_here
        else:
            evidence.append(f"{res}: {url}: {count} metric families")
    return verdict(problems, f"{len(pods)} pods serve valid metrics", "bad metrics", evidence)


# --- acting ----------------------------------------------------------------------------


@check(
    "scale-up-down",
    title="Scales up and down with the scale subresource",
    category=Category.SCALABILITY,
    weight=Weight.ESSENTIAL,
    needs=CLUSTER,
    overview="Scaling the workload up by one replica and back through the native scale "
    "subresource (as `kubectl scale` and the HPA do) reaches the wanted count of ready "
    "replicas within the timeout.",
    rationale="Horizontal scaling is how a CNF follows the load; one that needs a "
    "reinstall or a manual step to change its replica count does not scale.",
    remediation="Keep per-replica state out of the pod (or use a StatefulSet); make new "
    "replicas join without manual configuration; check the readiness probe.",
)
def scale_up_down(ctx: CheckContext) -> Outcome:
    kube = view(ctx)
    start = kube.spec_replicas()
    try:
        up_s = kube.scale_and_wait(start + 1, ctx.ready_timeout_s)
    except ClusterError as exc:
        kube.scale(start)
        return failed(f"scale up to {start + 1}: {exc}", [_workload(kube)])
    try:
        down_s = kube.scale_and_wait(start, ctx.ready_timeout_s)
    except ClusterError as exc:
        return failed(f"scale down to {start}: {exc}", [_workload(kube)])
    return passed(
        f"{start} -> {start + 1} ready in {up_s:.1f} s, back to {start} in {down_s:.1f} s",
        scale_up_s=up_s,
        scale_down_s=down_s,
    )


@check(
    "pod-recovery",
    title="Recovers from a pod deletion",
    category=Category.STATELESSNESS,
    weight=Weight.ESSENTIAL,
    needs=CLUSTER,
    overview="After one ready pod is deleted, the workload is back to its replica count of "
    "ready pods within the timeout; the time it takes is reported.",
    rationale="Nodes fail and pods are evicted; a CNF whose replacement pod does not come "
    "back by itself needs an operator at every disruption.",
    remediation="Make start-up independent of the replaced pod (no fixed names, addresses "
    "or local state); shorten start-up and the readiness probe's delay.",
)
def pod_recovery(ctx: CheckContext) -> Outcome:
    kube = view(ctx)
    wanted = kube.spec_replicas()
    ready = kube.ready_pods()
    if not ready:
        return failed("no ready pod to delete", [_workload(kube)])
    victim = ready[0]["metadata"]["name"]
    kube.delete_pod(victim)

    def recovered() -> bool:
        pods = kube.ready_pods()
        return len(pods) >= wanted and all(p["metadata"]["name"] != victim for p in pods)

    try:
        recovery_s = kube.wait_for(
            f"{wanted} ready pods after deleting {victim}", recovered, ctx.ready_timeout_s
        )
    except ClusterError as exc:
        return failed(str(exc), [Resource("Pod", kube.namespace, victim), _workload(kube)])
    return passed(
        f"deleted {victim}; {wanted} ready again in {recovery_s:.1f} s", recovery_s=recovery_s
    )


def _rollout(kube: KubeView, ctx: CheckContext, act: Any) -> tuple[float, int]:
    """Do `act`, then wait for the rollout; returns its time and the fewest ready pods."""
    fewest = len(kube.ready_pods())
    act()

    def done() -> bool:
        nonlocal fewest
        fewest = min(fewest, len(kube.ready_pods()))
        return kube.rolled_out()

    return kube.wait_for("the rollout", done, ctx.ready_timeout_s), fewest


@check(
    "rolling-update",
    title="Rolling update",
    category=Category.INSTALLABILITY_AND_UPGRADEABILITY,
    weight=Weight.ESSENTIAL,
    needs=CLUSTER,
    overview="A rollout of a new revision of the pod template (`kubectl rollout restart`) "
    "completes within the timeout and keeps at least one replica ready throughout.",
    rationale="Upgrades happen on live networks: a CNF must replace its pods one by one "
    "without a moment with no replica forwarding.",
    remediation="Use the RollingUpdate strategy with maxUnavailable below the replica "
    "count, a readiness probe, and a PodDisruptionBudget.",
)
def rolling_update(ctx: CheckContext) -> Outcome:
    kube = view(ctx)
    try:
        rollout_s, fewest = _rollout(kube, ctx, kube.restart_rollout)
    except ClusterError as exc:
        return failed(str(exc), [_workload(kube)])
    text = f"rolled out in {rollout_s:.1f} s, at least {fewest} replica(s) ready throughout"
    if fewest < 1:
        return failed(
            f"{text}: no replica was ready at some point",
            [_workload(kube)],
            rollout_s=rollout_s,
            min_ready=fewest,
        )
    return passed(text, rollout_s=rollout_s, min_ready=fewest)


@check(
    "rollback",
    title="Rollback",
    category=Category.INSTALLABILITY_AND_UPGRADEABILITY,
    weight=Weight.NORMAL,
    needs=CLUSTER,
    overview="Rolling back to the previous revision (`kubectl rollout undo`) completes and "
    "restores the previous pod template.",
    rationale="A failed upgrade must be undone quickly and exactly.",
    remediation="Keep revisionHistoryLimit above zero and avoid state that a previous "
    "version cannot read.",
)
def rollback(ctx: CheckContext) -> Outcome:
    kube = view(ctx)
    if kube.kind != "Deployment":
        return skipped("rollback is checked for Deployments only")
    try:
        if len(kube.revisions()) < 2:
            _rollout(kube, ctx, kube.restart_rollout)
        revisions = kube.revisions()
        if len(revisions) < 2:
            return failed(
                "no previous revision to roll back to (is revisionHistoryLimit 0?)",
                [_workload(kube)],
            )
        before = revisions[-2][1]["spec"]["template"]["metadata"].get("annotations") or {}
        rollout_s, fewest = _rollout(kube, ctx, kube.rollback)
    except ClusterError as exc:
        return failed(str(exc), [_workload(kube)])
    now = kube.template_annotations()
    if now.get(RESTARTED_AT) != before.get(RESTARTED_AT):
        return failed(
            "the pod template after the rollback is not the previous one", [_workload(kube)]
        )
    return passed(
        f"rolled back in {rollout_s:.1f} s, {fewest} replica(s) ready throughout",
        rollback_s=rollout_s,
    )


@check(
    "liveness-restart",
    title="Recovers when its liveness probe fails",
    category=Category.CONFIGURATION_AND_LIFECYCLE,
    weight=Weight.NORMAL,
    needs=CLUSTER,
    overview="When the data-plane process of one pod stops responding (SIGSTOP through "
    "pods/exec), the liveness probe fails, the kubelet restarts the container and the pod "
    "is ready again within the timeout.",
    rationale="A liveness probe that never fires on a hung process is decoration; this "
    "checks that the probe really detects the hang and that the restart recovers.",
    remediation="Probe the forwarding loop itself (not a side thread), with a period and "
    "failure threshold that detect a hang in seconds.",
)
def liveness_restart(ctx: CheckContext) -> Outcome:
    kube = view(ctx)
    exec_fn = getattr(ctx.cluster, "exec_in_pod", None)
    if exec_fn is None:
        return skipped(
            "the cluster driver cannot exec into pods (pods/exec), needed to hang a process"
        )
    ready = kube.ready_pods()
    if not ready:
        return failed("no ready pod", [_workload(kube)])
    pod = ready[0]
    name = pod["metadata"]["name"]
    container = str(pod["spec"]["containers"][0]["name"])
    before = kube.restarts().get(f"{name}/{container}", 0)
    exec_fn(kube.namespace, name, container, ["kill", "-STOP", "1"])

    def restarted_and_ready() -> bool:
        current = [p for p in kube.live_pods() if p["metadata"]["name"] == name]
        return (
            bool(current)
            and pod_ready(current[0])
            and kube.restarts().get(f"{name}/{container}", 0) > before
        )

    try:
        recovery_s = kube.wait_for(
            "restart by the liveness probe", restarted_and_ready, ctx.ready_timeout_s
        )
    except ClusterError as exc:
        # Nothing restarted the hung process: replace its pod, so the workload is left whole.
        kube.delete_pod(name)
        return failed(str(exc), [_pod(pod, container)])
    return passed(
        f"{name}/{container} restarted and ready in {recovery_s:.1f} s", recovery_s=recovery_s
    )


RUNTIME_CHECK_IDS = (
    "no-restarts",
    "runtime-matches-manifests",
    "logs-produced",
    "metrics-endpoint",
    "scale-up-down",
    "pod-recovery",
    "rolling-update",
    "rollback",
    "liveness-restart",
)
