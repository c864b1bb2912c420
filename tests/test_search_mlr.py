"""MLRsearch through the PyPI library, over the lab's data plane."""

from __future__ import annotations

import pytest

from benchmarks.dataplane_sut import DataPlaneSut, variant_model
from traffic.errors import SearchError
from traffic.model import GOAL_PRESETS, Goal, TrialResult
from traffic.search import MlrSearch, make_search


@pytest.mark.parametrize("preset", ["rfc2544", "quick"])
def test_mlrsearch_finds_ndr_and_pdr_within_goal_width(preset: str) -> None:
    sut = DataPlaneSut(variant_model("vpp-router", "clean"), 2, seed=3)
    goals = GOAL_PRESETS[preset]
    result = make_search("mlrsearch").search(sut.measure, goals, 10_000, sut.max_load_pps)

    assert result.method == "mlrsearch"
    assert [g.goal for g in result.goals] == list(goals)
    for outcome in result.goals:
        truth = sut.truth(outcome.goal.loss_ratio)
        assert outcome.lower_bound_pps is not None and outcome.upper_bound_pps is not None
        assert outcome.conditional_throughput_pps is not None
        assert outcome.lower_bound_pps <= truth * (1 + 1e-6)
        assert truth <= outcome.upper_bound_pps * (1 + 1e-6)
        assert (truth - outcome.lower_bound_pps) / truth <= outcome.goal.relative_width
        assert outcome.conditional_throughput_pps <= outcome.lower_bound_pps
    durations = {t.spec.intended_duration_s for t in result.trials}
    assert max(durations) == goals[0].final_trial_duration_s
    assert len(result.trials) == sut.trials
    assert result.trial_seconds == pytest.approx(sum(durations_of(result.trials)))


def durations_of(trials: tuple[TrialResult, ...]) -> list[float]:
    return [t.spec.intended_duration_s for t in trials]


def test_mlrsearch_uses_far_fewer_final_trials_than_binary_search() -> None:
    goals = GOAL_PRESETS["rfc2544"]
    sut = DataPlaneSut(variant_model("vpp-router", "clean"), 1, seed=5)
    mlr = make_search("mlrsearch").search(sut.measure, goals, 10_000, sut.max_load_pps)
    sut = DataPlaneSut(variant_model("vpp-router", "clean"), 1, seed=5)
    binary = make_search("rfc2544-binary").search(sut.measure, goals, 10_000, sut.max_load_pps)
    assert mlr.trial_seconds < 0.5 * binary.trial_seconds


def test_no_lower_bound_is_reported_not_raised() -> None:
    sut = DataPlaneSut(variant_model("cgnat", "clean"), 1, seed=1)
    goal = Goal("NDR", 0.0, 0.0, 0.01, 1.0, 1.0, 1.0)
    # min load far above capacity: it is an upper bound, so no lower bound exists
    result = MlrSearch().search(sut.measure, (goal,), 60e6, 70e6)
    assert result.goals[0].lower_bound_pps is None
    assert result.goals[0].conditional_throughput_pps is None


def test_identical_goals_are_rejected() -> None:
    sut = DataPlaneSut(variant_model("vpp-router", "clean"), 1, seed=1)
    ndr = GOAL_PRESETS["quick"][0]
    with pytest.raises(SearchError, match="identical"):
        MlrSearch().search(sut.measure, (ndr, ndr), 1e4, 1e6)
