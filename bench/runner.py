"""A run, stage by stage: plan, lab, probe, install, sweep, checks, restore, annex.

`execute` is the whole main job.  Every stage's status and time go to the manifest
and the journal.  SIGINT and SIGTERM stop the run cleanly: the current trial is
abandoned, traffic is stopped and ports released, the workload goes back to its
original replica count, and the run is marked interrupted so that `--resume` can
continue it.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from analysis.annex import render_annex
from bench import checkstage, environment
from bench.errors import BenchError, InputError, Interrupted, RunFailed, StoreError
from bench.manifest import methodology, profiles_record, versions
from bench.plan import Plan, check_budget, make_plan
from bench.profiles import RunBundle, TestbedProfile, load_run
from bench.progress import RunProgress
from bench.store import RunStore, new_run_id
from bench.sweep import Sweep, TrialRecorder, finished_measures

log = logging.getLogger(__name__)


@dataclass
class RunOptions:
    resume: str | None = None
    force: bool = False
    checks: bool = True
    require_tier: str | None = None
    plan_only: bool = False
    results_dir: Path | None = None
    annex: bool = True


@dataclass
class RunOutcome:
    run_dir: Path | None
    plan: Plan
    status: str
    tier: str | None = None
    summary: list[str] = field(default_factory=list)

    def tier_reached(self, wanted: str) -> bool:
        order = ["not-so-great", "bronze", "silver", "gold"]
        return self.tier in order and order.index(self.tier) >= order.index(wanted)


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM into KeyboardInterrupt so one path cleans up after both signals."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _results_root(bundle: RunBundle, options: RunOptions) -> Path:
    if options.results_dir is not None:
        return options.results_dir
    return Path(bundle.run.profile.results_dir)


def _resume_target(options: RunOptions, root: Path) -> Path:
    assert options.resume is not None
    candidate = Path(options.resume)
    if (candidate / "run.json").is_file():
        return candidate
    if (root / options.resume / "run.json").is_file():
        return root / options.resume
    raise InputError(f"--resume {options.resume}: no run of that id under {root}")


def _check_profiles_unchanged(bundle: RunBundle, manifest: dict[str, Any], force: bool) -> None:
    stored = manifest.get("profiles") or {}
    for name, item in profiles_record(bundle).items():
        before = (stored.get(name) or {}).get("sha256")
        if before is not None and before != item["sha256"] and not force:
            raise InputError(
                f"{item['path']}: the {name} profile changed since the run started; "
                "restore it, or pass --force to resume with the new one"
            )


def execute(run_profile: Path, options: RunOptions) -> RunOutcome:
    bundle = load_run(run_profile)
    testbed: TestbedProfile = bundle.testbed.profile
    time_scale = testbed.lab.time_scale if testbed.lab else 1.0
    plan = make_plan(bundle.traffic.profile, bundle.cnf.profile, time_scale)
    for line in plan.lines():
        log.info("%s", line)
    check_budget(plan, bundle.run.profile.time_budget, str(bundle.run.path))
    if options.plan_only:
        return RunOutcome(None, plan, "planned")

    root = _results_root(bundle, options)
    if options.resume:
        run_dir = _resume_target(options, root)
        store = RunStore.open(run_dir)
        manifest = store.manifest
        if manifest.get("status") == "done":
            raise InputError(f"{run_dir}: this run finished; there is nothing to resume")
        _check_profiles_unchanged(bundle, manifest, options.force)
        log.info("resuming %s", run_dir)
    else:
        run_id = new_run_id(bundle.run.profile.name)
        store = RunStore.create(root, run_id, _initial_manifest(bundle, plan))
    try:
        return _execute_in(store, bundle, plan, options)
    finally:
        store.close()


def _initial_manifest(bundle: RunBundle, plan: Plan) -> dict[str, Any]:
    cnf = bundle.cnf.profile
    testbed: TestbedProfile = bundle.testbed.profile
    return {
        "versions": versions(),
        "profiles": profiles_record(bundle),
        "methodology": methodology(bundle.traffic.profile),
        "plan": {
            "points": len(plan.points),
            "trials": plan.trials,
            "trial_seconds": plan.trial_seconds,
            "wall_s": plan.wall_s,
        },
        "cnf": {
            "name": cnf.name,
            "vendor": cnf.vendor,
            "product": cnf.product,
            "chart": cnf.chart.model_dump() if cnf.chart else None,
            "manifests": cnf.manifests,
            "workload": cnf.workload.model_dump(),
            "replicas": list(cnf.replicas),
            "namespace": cnf.namespace,
            "images": [],
        },
        "testbed": {"name": testbed.name, "steering": testbed.steering},
        "lab": testbed.lab.model_dump() if testbed.lab else None,
    }


def _execute_in(store: RunStore, bundle: RunBundle, plan: Plan, options: RunOptions) -> RunOutcome:
    records = store.records()
    store.update_manifest(
        status="running", started_at=store.manifest.get("started_at") or time.time()
    )
    outcome = RunOutcome(store.directory, plan, "running")
    command = "run" if options.checks else "sweep"
    with _terminate_as_interrupt(), RunProgress(plan.trials) as progress:
        env = environment.Environment(bundle, store, progress, force=options.force)
        status = "failed"  # unless the stages finish or an interrupt says otherwise
        try:
            env.enter()
            _stages(
                env=env,
                store=store,
                bundle=bundle,
                records=records,
                options=options,
                progress=progress,
                outcome=outcome,
            )
            status = "done"
        except KeyboardInterrupt as exc:
            status = "interrupted"
            raise Interrupted(
                f"run interrupted ({exc or 'SIGINT'}); traffic stopped, replicas restored. "
                f"Continue with: cnfbench {command} {bundle.run.path} "
                f"--resume {store.directory.name}"
            ) from exc
        except (BenchError, OSError) as exc:
            store.update_manifest(failure=str(exc).splitlines()[0])
            if isinstance(exc, BenchError):
                raise
            raise RunFailed(f"{store.directory}: {exc}") from exc
        finally:
            # a bug keeps its traceback, but the run is still marked and cleaned up
            env.cleanup()
            if status != "done":
                store.update_manifest(status=status)
    outcome.status = "done"
    store.update_manifest(status="done", finished_at=time.time())
    if options.annex:
        # last: the annex hashes every data file of the run directory as it is now
        annex = render_annex(store.directory)
        outcome.summary.append(f"annex: {annex.directory / 'index.html'}")
    return outcome


def _tier_lines(document: dict[str, Any]) -> list[str]:
    lines = []
    blockers = document.get("blockers") or []
    if document.get("next_tier") and blockers:
        lines.append(f"{document['next_tier']} was blocked by:")
        for req in blockers:
            lines.append(f"  - {req['message']}")
    return lines


def _stages(
    *,
    env: environment.Environment,
    store: RunStore,
    bundle: RunBundle,
    records: list[dict[str, Any]],
    options: RunOptions,
    progress: RunProgress,
    outcome: RunOutcome,
) -> None:
    def stage(name: str, work: Callable[[], None]) -> None:
        status = (store.manifest.get("stages") or {}).get(name, {}).get("status")
        if status == "done" and name in env.skippable_when_done:
            log.info("stage %s: done in an earlier attempt", name)
            return
        progress.stage_started(name)
        with store.stage(name):
            work()

    stage("probe", env.probe)
    stage("install", env.install)

    def sweep() -> None:
        recorder = TrialRecorder(
            store,
            env.generator,
            records,
            progress=progress,
            learning_frames=bundle.traffic.profile.learning_frames,
        )
        engine = Sweep(
            store=store,
            recorder=recorder,
            workload=env.workload,
            traffic=bundle.traffic.profile,
            cnf=bundle.cnf.profile,
            port_speed_bps=env.port_speed_bps,
            steering=bundle.testbed.profile.steering,
            done=finished_measures(records),
            progress=progress,
        )
        engine.load_journal(records)
        engine.run()
        env.sweep_results = engine.results
        log.info(
            "sweep: %d trials measured, %d replayed from the journal",
            recorder.measured,
            recorder.replayed,
        )

    stage("sweep", sweep)
    if options.checks and bundle.run.profile.checks:
        stage("checks", env.checks)
    stage("restore", env.restore)
    if bundle.cnf.profile.uninstall:
        stage("uninstall", env.uninstall)
    stage("compact", lambda: _compact(store))
    tiers = bundle.tiers.profile if bundle.tiers else None
    if options.checks and bundle.run.profile.checks and tiers is not None:

        def tier() -> None:
            document = checkstage.score_tier(store, tiers)
            outcome.tier = str(document["tier"])
            outcome.summary.extend(_tier_lines(document))

        stage("tier", tier)


def _compact(store: RunStore) -> None:
    counts = store.compact()
    log.info("compacted %d trials and %d points", counts["trials"], counts["points"])


__all__ = ["RunOptions", "RunOutcome", "StoreError", "execute"]
