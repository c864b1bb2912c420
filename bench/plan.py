"""The plan of a run: its points and how long they will take, before the first trial.

The estimate counts trial-seconds per search from the goals (MLRsearch spends about the
duration sum of each goal at its final duration plus a short exploration at the initial
duration; a binary search about one final-duration trial per halving of the range down
to the goal width), adds the latency, session and warm-up trials, and converts them to
wall time with the testbed's time scale (1 on real hardware, the lab's factor on the
embedded lab) plus a per-trial overhead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from bench.errors import InputError
from bench.profiles import CnfProfile, TrafficProfile
from traffic.model import Goal, Point

PER_TRIAL_OVERHEAD_S = 0.15  # controller, RPC and rx delay per trial, wall seconds
PER_SCALE_STEP_S = 5.0  # wall seconds to scale and wait for readiness, a rough guess
SEARCH_RANGE_RATIO = 1000.0  # max load / min load a search starts from


@dataclass(frozen=True)
class Plan:
    points: tuple[Point, ...]
    searches: int
    trial_seconds: float  # intended traffic time, in the testbed's time
    trials: int
    wall_s: float  # estimated wall-clock duration
    time_scale: float

    def lines(self) -> list[str]:
        ladder = sorted({p.replicas for p in self.points})
        return [
            f"plan: {len(self.points)} points over replicas {ladder}, {self.searches} searches",
            f"plan: about {self.trials} trials, {self.trial_seconds:.0f} trial-seconds "
            f"(time scale {self.time_scale:g})",
            f"plan: estimated duration {format_duration(self.wall_s)}",
        ]


def format_duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _search_cost(method: str, goals: tuple[Goal, ...]) -> tuple[int, float]:
    """(trials, trial-seconds) one search is expected to use."""
    if method == "mlrsearch":
        trials, seconds = 0, 0.0
        for goal in goals:
            final = max(1, math.ceil(goal.duration_sum_s / goal.final_trial_duration_s))
            explore = 8
            trials += final + explore
            seconds += goal.duration_sum_s + explore * goal.initial_trial_duration_s
        return trials, seconds
    halvings = max(1, math.ceil(math.log2(1 / min(g.relative_width for g in goals))))
    halvings += math.ceil(math.log2(SEARCH_RANGE_RATIO)) // 2
    final_s = max(g.final_trial_duration_s for g in goals)
    repeats = 2 if method == "tst009-binary" else 1
    return halvings * repeats * len(goals), halvings * repeats * len(goals) * final_s


def make_plan(traffic: TrafficProfile, cnf: CnfProfile, time_scale: float = 1.0) -> Plan:
    goals = traffic.search.resolved_goals()
    points = tuple(
        Point(r, frame, flows, direction)
        for r in cnf.replicas
        for frame in traffic.frame_sizes
        for flows in traffic.flow_counts
        for direction in traffic.directions
    )
    per_trials, per_seconds = _search_cost(traffic.search.method, goals)
    latency_n = len(traffic.latency.loads)
    trials = len(points) * (per_trials + latency_n)
    seconds = len(points) * (per_seconds + latency_n * traffic.latency.trial_duration)
    pdr_final = max(g.final_trial_duration_s for g in goals)
    sessions = len(traffic.sessions.flow_counts) * len(cnf.replicas)
    trials += sessions
    seconds += sessions * pdr_final
    if traffic.warmup_trial:
        trials += len(cnf.replicas)
        seconds += len(cnf.replicas) * traffic.warmup_trial
    wall = seconds / time_scale + trials * PER_TRIAL_OVERHEAD_S
    wall += PER_SCALE_STEP_S * len(cnf.replicas)
    return Plan(points, len(points), seconds, trials, wall, time_scale)


def check_budget(plan: Plan, budget_s: float, where: str) -> None:
    if plan.wall_s > budget_s:
        raise InputError(
            f"{where}: time_budget: the plan needs about {format_duration(plan.wall_s)} "
            f"but the budget is {format_duration(budget_s)}; raise time_budget, or measure "
            "fewer frame sizes, flow counts or replica counts"
        )
