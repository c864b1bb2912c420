"""Binary searches (RFC 2544, TST009 with loss verification) over the lab's data plane
and over small SUTs whose answer is known exactly."""

from __future__ import annotations

import pytest

from benchmarks.dataplane_sut import DataPlaneSut, variant_model
from traffic.errors import SearchError
from traffic.model import (
    GOAL_PRESETS,
    Direction,
    Goal,
    LaneCounts,
    SearchHints,
    StreamSpec,
    TrialResult,
    TrialSpec,
)
from traffic.search import BinarySearch, make_search

STREAMS = StreamSpec(64, 1, Direction.UNIDIRECTIONAL)


class StepSut:
    """Forwards everything up to `capacity_pps`, drops the excess above it; loses
    `transient_loss` of the frames in the trials listed in `lossy_trials`."""

    def __init__(self, capacity_pps: float, lossy_trials: frozenset[int] = frozenset()) -> None:
        self.capacity_pps = capacity_pps
        self.lossy_trials = lossy_trials
        self.calls: list[tuple[float, float]] = []

    def measure(self, duration_s: float, load_pps: float) -> TrialResult:
        self.calls.append((duration_s, load_pps))
        offered = round(load_pps * duration_s)
        forwarded = min(offered, round(self.capacity_pps * duration_s))
        if len(self.calls) in self.lossy_trials:
            forwarded = round(forwarded * 0.9)
        spec = TrialSpec(STREAMS, load_pps, duration_s)
        return TrialResult(spec, duration_s, (LaneCounts(0, 1, offered, forwarded),))


NDR_ONLY = (GOAL_PRESETS["rfc2544"][0],)


@pytest.mark.parametrize("method", ["rfc2544-binary", "tst009-binary"])
@pytest.mark.parametrize("replicas", [1, 3])
def test_finds_ndr_and_pdr_within_goal_width_of_the_model(method: str, replicas: int) -> None:
    sut = DataPlaneSut(variant_model("stateful-firewall", "clean"), replicas, seed=7)
    goals = GOAL_PRESETS["rfc2544"]
    result = make_search(method).search(sut.measure, goals, 10_000, sut.max_load_pps)

    assert result.method == method
    assert [g.goal for g in result.goals] == list(goals)
    for outcome in result.goals:
        truth = sut.truth(outcome.goal.loss_ratio)
        assert outcome.lower_bound_pps is not None and outcome.upper_bound_pps is not None
        assert outcome.lower_bound_pps <= truth < outcome.upper_bound_pps
        width = (outcome.upper_bound_pps - outcome.lower_bound_pps) / outcome.upper_bound_pps
        assert width <= outcome.goal.relative_width
    assert all(t.spec.intended_duration_s == 60.0 for t in result.trials)
    assert result.trial_seconds == 60.0 * len(result.trials) == 60.0 * sut.trials


def test_first_trial_is_at_max_load_and_a_fast_dut_ends_there() -> None:
    sut = StepSut(capacity_pps=2e6)
    result = BinarySearch(verification=False).search(sut.measure, NDR_ONLY, 1e4, 1e6)
    assert sut.calls == [(60.0, 1e6)]
    assert result.goals[0].lower_bound_pps == 1e6
    assert result.goals[0].upper_bound_pps is None


def test_no_lower_bound_when_even_min_load_loses() -> None:
    sut = StepSut(capacity_pps=1e3)
    result = BinarySearch(verification=False).search(sut.measure, NDR_ONLY, 1e4, 1e6)
    outcome = result.goals[0]
    assert outcome.lower_bound_pps is None
    assert outcome.conditional_throughput_pps is None
    assert outcome.upper_bound_pps == 1e4
    assert (60.0, 1e4) in sut.calls


def test_loss_verification_repeats_a_lossy_trial_and_rfc2544_does_not() -> None:
    # The first bisection step (about half of max) loses 10 % once: with verification
    # that is trial 3 (max load fails twice first), without it trial 2.
    tst009 = StepSut(capacity_pps=8e5, lossy_trials=frozenset({3}))
    goals = (GOAL_PRESETS["tst009"][0],)
    verified = BinarySearch(verification=True).search(tst009.measure, goals, 1e4, 1e6)
    assert tst009.calls[0] == tst009.calls[1] == (60.0, 1e6)  # a failing max is verified
    assert tst009.calls[2] == tst009.calls[3]  # the lossy trial was repeated at its load
    assert verified.goals[0].lower_bound_pps is not None
    assert verified.goals[0].lower_bound_pps <= 8e5 < verified.goals[0].upper_bound_pps  # type: ignore[operator]

    rfc = StepSut(capacity_pps=8e5, lossy_trials=frozenset({2}))
    plain = BinarySearch(verification=False).search(rfc.measure, NDR_ONLY, 1e4, 1e6)
    assert plain.goals[0].upper_bound_pps is not None
    assert plain.goals[0].upper_bound_pps <= rfc.calls[1][1]  # the transient became a bound


def test_tst009_fails_a_load_only_after_the_allowed_exceedances() -> None:
    # 21 x 1 s with exceed ratio 0.5: a load fails after 11 bad trials, passes after 11 good.
    goal = GOAL_PRESETS["quick"][0]
    sut = StepSut(capacity_pps=5e5)
    result = BinarySearch(verification=True).search(sut.measure, (goal,), 1e4, 1e6)
    assert sut.calls[:11] == [(1.0, 1e6)] * 11
    assert result.goals[0].lower_bound_pps <= 5e5 < result.goals[0].upper_bound_pps  # type: ignore[operator]


@pytest.mark.parametrize("truth", [3.0e5, 5.0e5, 7.9e5])
def test_hints_narrow_and_widen_when_the_truth_lies_outside(truth: float) -> None:
    hints = SearchHints(lower_pps=4.5e5, upper_pps=5.5e5)
    sut = StepSut(capacity_pps=truth)
    result = BinarySearch(verification=False).search(sut.measure, NDR_ONLY, 1e4, 1e6, hints)
    outcome = result.goals[0]
    assert outcome.lower_bound_pps is not None and outcome.upper_bound_pps is not None
    assert outcome.lower_bound_pps <= truth < outcome.upper_bound_pps
    assert (outcome.upper_bound_pps - outcome.lower_bound_pps) / outcome.upper_bound_pps <= 0.005
    cold = StepSut(capacity_pps=truth)
    BinarySearch(verification=False).search(cold.measure, NDR_ONLY, 1e4, 1e6)
    if truth == 5.0e5:
        assert len(sut.calls) < len(cold.calls)  # a right hint saves trials


def test_a_hint_earlier_trials_contradict_moves_next_to_them() -> None:
    # the PDR's hint lies far below what the NDR's trials already showed to be good:
    # the PDR search starts next to that bound, not from the full range at max load
    capacity = 5.0e5
    hints = SearchHints(
        goal_bounds={"NDR": (4.99e5, 5.01e5), "PDR": (2.0e5, 2.2e5)},
    )
    sut = StepSut(capacity_pps=capacity)
    goals = GOAL_PRESETS["rfc2544"]
    result = BinarySearch(verification=False).search(sut.measure, goals, 1e4, 1e6, hints)
    assert all(load < 6e5 for _, load in sut.calls)
    for outcome in result.goals:
        truth = capacity / (1 - outcome.goal.loss_ratio)
        assert outcome.lower_bound_pps is not None and outcome.upper_bound_pps is not None
        assert outcome.lower_bound_pps <= truth < outcome.upper_bound_pps


def test_bad_arguments_are_search_errors() -> None:
    sut = StepSut(capacity_pps=1e5)
    with pytest.raises(SearchError, match="min load"):
        BinarySearch(verification=False).search(sut.measure, NDR_ONLY, 1e6, 1e4)
    with pytest.raises(SearchError, match="at least one goal"):
        BinarySearch(verification=False).search(sut.measure, (), 1e4, 1e6)
    mixed = (NDR_ONLY[0], Goal("PDR", 0.005, 0.0, 0.005, 1.0, 30.0, 30.0))
    with pytest.raises(SearchError, match="final trial duration"):
        BinarySearch(verification=False).search(sut.measure, mixed, 1e4, 1e6)
    with pytest.raises(SearchError, match="unknown search method"):
        make_search("linear")
