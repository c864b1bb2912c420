"""The sweep: the ladder of points over increasing replica counts.

For each replica count of the CNF profile's ladder the sweep scales the workload, waits
until every replica is ready, runs a warm-up trial, and then for each frame size x flow
count x direction searches NDR and PDR, runs latency trials at fractions of the NDR, and
(at the first frame size and direction) finds the session capacity.

Every trial goes through `TrialRecorder`, which journals it before the next one starts
and, on a resumed run, hands back the trials the journal already holds instead of
measuring them again.  Searches are deterministic functions of their trial results, so a
resumed search asks for the same trials in the same order and the replay stays in step.
"""

from __future__ import annotations

import logging
from collections import defaultdict, deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Protocol

from bench.profiles import CnfProfile, TrafficProfile
from bench.store import RunStore, point_record, trial_from_record
from traffic import units
from traffic.model import (
    Direction,
    Generator,
    Goal,
    GoalResult,
    Point,
    SearchHints,
    SearchResult,
    StreamSpec,
    TrialKind,
    TrialResult,
    TrialSpec,
)
from traffic.search import SweepWarmStart, make_search
from traffic.trial import TrialRunner

log = logging.getLogger(__name__)

MAX_INVALID_IN_A_ROW = 3


class Workload(Protocol):
    """What the sweep needs of the cluster: scale the CNF and learn its replicas."""

    def scale_to(self, replicas: int) -> float:
        """Scale and wait until all replicas are ready; return the time to ready, s."""
        ...

    def replica_macs(self) -> Mapping[int, tuple[str, ...]]:
        """Per generator port, the destination MAC of each ready replica."""
        ...


def point_streams(
    point: Point,
    workload: Workload,
    steering: str,
    *,
    flows: int | None = None,
    latency_rate_pps: float = 0.0,
) -> StreamSpec:
    """The traffic of `point` (with `flows` instead of its own when given): per replica,
    a stream group to each ready pod's MAC when the testbed steers per replica."""
    macs = workload.replica_macs() if steering == "per-replica" else {}
    return StreamSpec(
        frame_size=units.parse_frame_size(point.frame_size),
        flows=flows or point.flows,
        direction=point.direction,
        latency_rate_pps=latency_rate_pps,
        replica_macs=dict(macs),
    )


@dataclass(frozen=True)
class SweepEvent:
    """Progress of the sweep, for the display."""

    stage: str
    point: Point | None
    trial: TrialResult | None = None
    message: str = ""
    trials_done: int = 0


ProgressFn = Callable[[SweepEvent], None]


def _close(a: TrialSpec, record: Mapping[str, Any]) -> bool:
    """Whether a journaled trial is the one asked for now (same kind, load, duration)."""
    load = float(record["intended_load_pps"])
    duration = float(record["intended_duration_s"])
    return (
        abs(load - a.intended_load_pps) <= 1e-9 * max(1.0, a.intended_load_pps)
        and abs(duration - a.intended_duration_s) <= 1e-9
        and record["kind"] == a.kind.value
    )


class TrialRecorder:
    """Runs trials on the generator, journals each, and replays journaled ones on resume.

    Live trials go through `traffic.trial.TrialRunner`: an invalid trial (generator
    error, lost connection, port down) is journaled as invalid with its reason, the
    generator is reconnected and the trial repeated; it never reaches a search.
    """

    def __init__(
        self,
        store: RunStore,
        generator: Generator,
        records: Sequence[Mapping[str, Any]] = (),
        progress: ProgressFn | None = None,
        learning_frames: bool = False,
    ) -> None:
        self.store = store
        self.generator = generator
        self.progress = progress
        self.measured = 0
        self.replayed = 0
        self._learn = learning_frames
        self._replay: dict[tuple[str, str], deque[Mapping[str, Any]]] = defaultdict(deque)
        for record in records:
            if record.get("type") == "trial" and record.get("valid"):
                extra = record.get("extra") or {}
                key = (str(extra.get("point_key")), str(extra.get("phase")))
                self._replay[key].append(record)

    def run(self, point: Point, phase: str, spec: TrialSpec) -> TrialResult:
        queue = self._replay.get((point.key, phase))
        if queue:
            if _close(spec, queue[0]):
                self.replayed += 1
                return trial_from_record(queue.popleft(), spec)
            log.warning(
                "%s %s: the journal's next trial differs from the one asked for; "
                "measuring from here on",
                point.key,
                phase,
            )
            queue.clear()
        return self.measure(point, phase, spec)

    def measure(self, point: Point, phase: str, spec: TrialSpec) -> TrialResult:
        """Measure on the generator, whatever the journal holds."""

        def record(result: TrialResult) -> None:
            self.store.append_trial(result, point, point_key=point.key, phase=phase)
            self.measured += 1
            if self.progress is not None:
                self.progress(SweepEvent("trial", point, result, trials_done=self.measured))

        runner = TrialRunner(
            self.generator,
            spec.streams,
            record=record,
            kind=spec.kind,
            max_attempts=MAX_INVALID_IN_A_ROW,
            learning_frames=self._learn,
        )
        self._learn = False
        return runner.run(spec)


@dataclass
class PointOutcome:
    point: Point
    search: SearchResult
    ndr_pps: float | None
    pdr_pps: float | None
    latency: dict[str, TrialResult] = field(default_factory=dict)


GOAL_FIELDS = tuple(f.name for f in fields(Goal))


def goal_record(result: GoalResult) -> dict[str, Any]:
    return {
        **asdict(result.goal),
        "lower_bound_pps": result.lower_bound_pps,
        "upper_bound_pps": result.upper_bound_pps,
        "conditional_throughput_pps": result.conditional_throughput_pps,
    }


class Sweep:
    """The measurement part of a run, stage by stage, over one CNF and one testbed."""

    def __init__(
        self,
        *,
        store: RunStore,
        recorder: TrialRecorder,
        workload: Workload,
        traffic: TrafficProfile,
        cnf: CnfProfile,
        port_speed_bps: float,
        steering: str = "shared-front",
        done: Mapping[str, set[str]] | None = None,
        progress: ProgressFn | None = None,
    ) -> None:
        self.store = store
        self.recorder = recorder
        self.workload = workload
        self.traffic = traffic
        self.cnf = cnf
        self.port_speed_bps = port_speed_bps
        self.steering = steering
        self.done = done or {}
        self.progress = progress
        self.goals: tuple[Goal, ...] = traffic.search.resolved_goals()
        self.results: dict[str, PointOutcome] = {}
        self._throughput_records: dict[str, Mapping[str, Any]] = {}
        self.warm = SweepWarmStart(margin=traffic.search.warm_start_margin)

    # --- the ladder ---------------------------------------------------------------------

    def points(self, replicas: int) -> Iterator[Point]:
        for frame in self.traffic.frame_sizes:
            for flows in self.traffic.flow_counts:
                for direction in self.traffic.directions:
                    yield Point(replicas, frame, flows, direction)

    def run(self) -> None:
        for replicas in self.cnf.replicas:
            self.run_replica_count(replicas)

    def run_replica_count(self, replicas: int) -> None:
        points = list(self.points(replicas))
        pending = [p for p in points if not self._finished(p)]
        if not pending and self._sessions_done(replicas):
            log.info("replicas %d: already measured, nothing to do", replicas)
            for point in points:
                self._restore_outcome(point)
            return
        self._emit("scale", None, f"scaling {self.cnf.workload.name} to {replicas}")
        ready_s = self.workload.scale_to(replicas)
        self.store.append("event", event="scaled", replicas=replicas, time_to_ready_s=ready_s)
        self._warm_up(points[0])
        for point in points:
            if self._finished(point):
                self._restore_outcome(point)
                continue
            self.measure_point(point)
        if not self._sessions_done(replicas):
            self.measure_sessions(points[0])

    # --- one point ----------------------------------------------------------------------

    def streams(
        self, point: Point, flows: int | None = None, with_latency: bool = False
    ) -> StreamSpec:
        """The traffic of `point`.  Only latency trials carry latency streams: RFC 2544
        §26.2 measures latency apart from throughput, and a search gains nothing from
        them but per-trial cost."""
        latency_pps = self.traffic.latency.rate if with_latency else 0.0
        return point_streams(
            point, self.workload, self.steering, flows=flows, latency_rate_pps=latency_pps
        )

    def _measure_fn(
        self, point: Point, phase: str, streams: StreamSpec, kind: TrialKind
    ) -> Callable[[float, float], TrialResult]:
        def measure(duration_s: float, load_pps: float) -> TrialResult:
            spec = TrialSpec(streams, load_pps, duration_s, kind)
            return self.recorder.run(point, phase, spec)

        return measure

    def _warm_up(self, point: Point) -> None:
        """Low-rate traffic after a scale; always sent, never replayed (new replicas)."""
        durations = [d for d in (self.traffic.warmup_trial, self.cnf.warmup) if d]
        if not durations:
            return
        streams = self.streams(point)
        load = 0.1 * streams.max_load_pps(self.port_speed_bps)
        spec = TrialSpec(streams, load, max(durations), TrialKind.WARMUP)
        self.recorder.measure(point, "warm-up", spec)

    def hints(self, point: Point) -> SearchHints | None:
        """Bounds estimated from the replica counts measured so far (`SweepWarmStart`)."""
        if not self.traffic.search.warm_start:
            return None
        return self.warm.hints_for(point)

    def measure_point(self, point: Point) -> PointOutcome:
        self._emit("search", point, f"searching {point.key}")
        streams = self.streams(point)
        max_load = streams.max_load_pps(self.port_speed_bps)
        min_load = min(self.traffic.search.min_load, max_load / 10)
        search = make_search(self.traffic.search.method)
        measure = self._measure_fn(point, "search", streams, TrialKind.SEARCH)
        result = search.search(measure, self.goals, min_load, max_load, self.hints(point))
        ndr, pdr = self._ndr_pdr(result)
        outcome = PointOutcome(
            point, result, ndr.conditional_throughput_pps, pdr.conditional_throughput_pps
        )
        if not self._has(point, "throughput"):
            self._record_throughput(point, result, streams, max_load)
        self.warm.record(point, result)
        self.measure_latency(point, self.streams(point, with_latency=True), outcome)
        self.results[point.key] = outcome
        return outcome

    def _ndr_pdr(self, result: SearchResult) -> tuple[GoalResult, GoalResult]:
        ordered = sorted(result.goals, key=lambda g: g.goal.loss_ratio)
        return ordered[0], ordered[-1]

    def _record_throughput(
        self, point: Point, result: SearchResult, streams: StreamSpec, max_load: float
    ) -> None:
        ndr, pdr = self._ndr_pdr(result)
        frame = streams.frame_size
        values: dict[str, Any] = {}
        for label, goal in (("ndr", ndr), ("pdr", pdr)):
            pps = goal.conditional_throughput_pps
            values[f"{label}_pps"] = pps
            values[f"{label}_l1_bps"] = units.pps_to_l1_bps(pps, frame) if pps else None
            values[f"{label}_l2_bps"] = units.pps_to_l2_bps(pps, frame) if pps else None
            values[f"{label}_lower_pps"] = goal.lower_bound_pps
            values[f"{label}_upper_pps"] = goal.upper_bound_pps
        self.store.append(
            "point",
            point=point_record(point),
            measure="throughput",
            method=result.method,
            preset=self.traffic.search.preset,
            goals=[goal_record(g) for g in result.goals],
            line_rate_pps=max_load,
            trial_seconds=result.trial_seconds,
            trials=len(result.trials),
            search_id=f"{point.key}/search",
            **values,
        )

    # --- latency and sessions -----------------------------------------------------------

    def latency_loads(self, ndr_pps: float) -> list[tuple[str, float]]:
        out = []
        for load in self.traffic.latency.loads:
            if load == "NDR":
                out.append(("NDR", ndr_pps))
            else:
                out.append((f"{round(float(load) * 100):d}%", float(load) * ndr_pps))
        return out

    def measure_latency(self, point: Point, streams: StreamSpec, outcome: PointOutcome) -> None:
        if not outcome.ndr_pps:
            log.warning("%s: no NDR found, so no latency trials", point.key)
            return
        duration = self.traffic.latency.trial_duration
        for label, load in self.latency_loads(outcome.ndr_pps):
            spec = TrialSpec(streams, load, duration, TrialKind.LATENCY)
            result = self.recorder.run(point, f"latency-{label}", spec)
            outcome.latency[label] = result
            if self._has(point, f"latency:{label}"):
                continue
            self.store.append(
                "point",
                point=point_record(point),
                measure="latency",
                load_label=label,
                load_pps=load,
                loss_ratio=result.loss_ratio,
                latency=_worst_latency(result),
            )

    def measure_sessions(self, base: Point) -> None:
        """The largest flow count at which the PDR loss goal holds at a fraction of the NDR
        measured with the base flow count (checked by one trial per flow count)."""
        spec_s = self.traffic.sessions
        outcome = self.results.get(base.key)
        if not spec_s.flow_counts or outcome is None or not outcome.ndr_pps:
            return
        self._emit("sessions", base, f"session capacity at {base.replicas} replicas")
        load = spec_s.hold_fraction * outcome.ndr_pps
        pdr_goal = max(self.goals, key=lambda g: g.loss_ratio)
        capacity = 0
        held: list[dict[str, Any]] = []
        for flows in spec_s.flow_counts:
            streams = self.streams(base, flows=flows)
            spec = TrialSpec(streams, load, pdr_goal.final_trial_duration_s, TrialKind.SESSIONS)
            result = self.recorder.run(base, f"sessions-{flows}", spec)
            ok = result.loss_ratio <= pdr_goal.loss_ratio
            held.append({"flows": flows, "loss_ratio": result.loss_ratio, "held": ok})
            if not ok:
                break
            capacity = flows
        self.store.append(
            "point",
            point=point_record(base),
            measure="sessions",
            session_capacity_flows=capacity,
            load_pps=load,
            hold_fraction=spec_s.hold_fraction,
            steps=held,
        )

    # --- resume -------------------------------------------------------------------------

    def _finished(self, point: Point) -> bool:
        measures = self.done.get(point.key, set())
        if "throughput" not in measures:
            return False
        record = self._throughput_records.get(point.key) or {}
        ndr = record.get("ndr_pps")
        if not ndr:
            return True
        return all(f"latency:{label}" in measures for label, _ in self.latency_loads(ndr))

    def _has(self, point: Point, measure: str) -> bool:
        return measure in self.done.get(point.key, set())

    def _sessions_done(self, replicas: int) -> bool:
        if not self.traffic.sessions.flow_counts:
            return True
        base = next(self.points(replicas))
        return "sessions" in self.done.get(base.key, set())

    def _restore_outcome(self, point: Point) -> None:
        """Rebuild a finished point's outcome from the journal (for warm starts)."""
        record = self._throughput_records.get(point.key)
        if record is None:
            return
        goals = [
            GoalResult(
                Goal(**{k: g[k] for k in GOAL_FIELDS}),
                g["lower_bound_pps"],
                g["upper_bound_pps"],
                g["conditional_throughput_pps"],
            )
            for g in record["goals"]
        ]
        result = SearchResult(record["method"], tuple(goals), ())
        ndr, pdr = self._ndr_pdr(result)
        self.results[point.key] = PointOutcome(
            point, result, ndr.conditional_throughput_pps, pdr.conditional_throughput_pps
        )
        self.warm.record(point, result)

    def load_journal(self, records: Sequence[Mapping[str, Any]]) -> None:
        self._throughput_records = {}
        for record in records:
            if record.get("type") == "point" and record.get("measure") == "throughput":
                self._throughput_records[_point_of(record).key] = record

    def _emit(self, stage: str, point: Point | None, message: str) -> None:
        log.info("%s", message)
        if self.progress is not None:
            self.progress(SweepEvent(stage, point, message=message))


def _worst_latency(result: TrialResult) -> dict[str, Any] | None:
    if not result.latency:
        return None
    lanes = list(result.latency.values())
    worst = max(lanes, key=lambda lat: lat.p99_us)
    summary = {
        "min_us": min(lat.min_us for lat in lanes),
        "mean_us": sum(lat.mean_us for lat in lanes) / len(lanes),
        "max_us": max(lat.max_us for lat in lanes),
        "p50_us": max(lat.p50_us for lat in lanes),
        "p90_us": max(lat.p90_us for lat in lanes),
        "p99_us": worst.p99_us,
        "p999_us": max(lat.p999_us for lat in lanes),
        "samples": sum(lat.samples for lat in lanes),
    }
    return summary


def _point_of(record: Mapping[str, Any]) -> Point:
    p = record["point"]
    return Point(p["replicas"], p["frame_size"], p["flows"], Direction(p["direction"]))


def finished_measures(records: Sequence[Mapping[str, Any]]) -> dict[str, set[str]]:
    """Per point key, what the journal completed: ``throughput``, ``latency:<load>``,
    ``sessions``."""
    done: dict[str, set[str]] = defaultdict(set)
    for record in records:
        if record.get("type") != "point":
            continue
        key = _point_of(record).key
        measure = str(record.get("measure"))
        if measure == "latency":
            measure = f"latency:{record.get('load_label')}"
        done[key].add(measure)
    return dict(done)
