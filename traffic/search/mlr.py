"""MLRsearch (RFC 9971) through FD.io CSIT's `MLRsearch` library from PyPI.

All goals are searched at once: every trial updates the bounds of every goal, short
trials (the goal's initial duration, then longer "preceding targets") narrow the
interval before final-duration trials decide, and a goal's exceed ratio lets that
share of its duration sum be high-loss while a load still counts as a lower bound
(RFC 9971 §4.6, §4.7).

Loads are aggregate over all directions, in frames per second, as everywhere in the
harness; the library treats the unit as opaque.

Caveats: the library starts from the forwarding rate at max load and gains little from
a prior, so hints are accepted and ignored.  Generator shortfall (sent fewer frames than
intended) is not passed to the library as loss: it is a generator warning on the trial,
not CNF loss.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from MLRsearch import AbstractMeasurer, Config, MeasurementResult, MultipleLossRatioSearch
from MLRsearch import SearchGoal as MlrGoal

from traffic.errors import SearchError
from traffic.model import Goal, GoalResult, MeasureFn, SearchHints, SearchResult, TrialResult
from traffic.search.common import check_search_args

log = logging.getLogger(__name__)


class _Measurer(AbstractMeasurer):  # type: ignore[misc]
    """Adapts a measure function to the library's measurer interface and keeps the trials."""

    def __init__(self, measure: MeasureFn) -> None:
        self._measure = measure
        self.trials: list[TrialResult] = []

    def measure(self, intended_duration: float, intended_load: float) -> MeasurementResult:
        result = self._measure(float(intended_duration), float(intended_load))
        if not result.valid:
            raise SearchError(f"the measure function returned an invalid trial at {intended_load}")
        self.trials.append(result)
        return MeasurementResult(
            intended_duration=float(intended_duration),
            intended_load=float(intended_load),
            offered_count=result.offered_count,
            forwarding_count=min(result.forwarded_count, result.offered_count),
        )


def to_library_goal(goal: Goal) -> MlrGoal:
    return MlrGoal(
        loss_ratio=goal.loss_ratio,
        exceed_ratio=goal.exceed_ratio,
        relative_width=goal.relative_width,
        initial_trial_duration=goal.initial_trial_duration_s,
        final_trial_duration=goal.final_trial_duration_s,
        duration_sum=goal.duration_sum_s,
        # without fail-fast, a min load that is an upper bound gives "no lower bound"
        fail_fast=False,
    )


class MlrSearch:
    """The Search protocol over `MLRsearch.MultipleLossRatioSearch`."""

    name = "mlrsearch"

    def __init__(self, search_duration_max_s: float = 7 * 24 * 3600.0) -> None:
        # The library's own timeout is wall time from the start of the search; the
        # harness bounds a run by its time budget instead, so this is a backstop.
        self.search_duration_max_s = search_duration_max_s

    def search(
        self,
        measure: MeasureFn,
        goals: Sequence[Goal],
        min_load_pps: float,
        max_load_pps: float,
        hints: SearchHints | None = None,
    ) -> SearchResult:
        check_search_args(goals, min_load_pps, max_load_pps)
        if hints is not None:
            log.debug("mlrsearch starts from the forwarding rate at max load; hints unused")
        library_goals = [to_library_goal(g) for g in goals]
        if len(set(library_goals)) != len(library_goals):
            raise SearchError("mlrsearch: two goals have identical attributes")

        config = Config()
        config.goals = library_goals
        config.min_load = min_load_pps
        config.max_load = max_load_pps
        config.search_duration_max = self.search_duration_max_s
        config.warmup_duration = None
        measurer = _Measurer(measure)
        try:
            found = MultipleLossRatioSearch(config=config).search(
                measurer=measurer, debug=log.debug
            )
        except RuntimeError as exc:
            raise SearchError(f"mlrsearch failed: {exc}") from exc

        results = []
        for goal, library_goal in zip(goals, library_goals, strict=True):
            outcome = found[library_goal]
            lower = outcome.relevant_lower_bound
            upper = outcome.relevant_upper_bound
            conditional = outcome.conditional_throughput
            results.append(
                GoalResult(
                    goal,
                    float(lower) if lower is not None else None,
                    float(upper) if upper is not None else None,
                    float(conditional) if conditional is not None else None,
                )
            )
        return SearchResult(method=self.name, goals=tuple(results), trials=tuple(measurer.trials))
