"""Binary searches for the throughput: RFC 2544 §26.1 and ETSI GS NFV-TST 009 §12.3.

Both bisect the intended load in linear space at the goal's final trial duration and stop
when the bounds are closer than the goal's relative width of the upper bound.  They
differ in how a load is classified:

- RFC 2544 (`rfc2544-binary`): one trial decides; any loss above the goal loss ratio
  makes the load an upper bound.  The goal's exceed ratio and duration sum are ignored.
- TST009 with loss verification (`tst009-binary`, §12.3.3): a trial above the goal loss
  ratio is repeated, so that a transient loss event does not end the search too low.
  The goal's duration sum fixes how many final-duration trials a decision may take,
  ``n = ceil(duration_sum / final_trial_duration)``, and its exceed ratio how many of
  them may exceed the loss, ``allowed = floor(exceed_ratio * n)``.  A load is a lower
  bound once ``n - allowed`` trials were good, an upper bound once more than
  ``allowed`` were bad; in the ``tst009`` preset (2 x 60 s, exceed 0.5) one good trial
  passes and a failing trial is verified once.

Goals are searched in order of increasing loss ratio, and every trial counts for every
goal: a load that is a lower bound for a goal is one for any goal with a higher loss
ratio, so the PDR search starts from the NDR result.

Hints (a warm start from a neighbouring point of the sweep) replace the initial
interval with provisional bounds.  Provisional bounds are verified only when the
bisection converges onto them; a bound that fails verification moves the interval
outwards, by half the hint's width and then by twice the previous step each time, so a
wrong hint costs a few trials, not the result.  A hint that the trials of an earlier goal
already contradict is moved next to the bound that contradicts it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from traffic.errors import SearchError
from traffic.model import Goal, GoalResult, MeasureFn, SearchHints, SearchResult, TrialResult
from traffic.search.common import check_search_args

log = logging.getLogger(__name__)

# A ceiling on trials per search, far above what a bisection needs, so a SUT that
# never settles ends with an error rather than an endless run.
MAX_TRIALS = 400
# A provisional (hinted) bound is verified once bisection has narrowed the interval to
# this fraction of its width without testing that bound.
EARLY_VERIFY_FRACTION = 0.25


@dataclass(frozen=True)
class Decision:
    """How a load is classified for one goal: its trial counts are enough to decide."""

    needed: int  # final-duration trials a decision may take
    allowed: int  # of those, how many may exceed the goal loss ratio

    @classmethod
    def for_goal(cls, goal: Goal, verification: bool) -> Decision:
        if not verification:
            return cls(needed=1, allowed=0)
        needed = max(1, math.ceil(goal.duration_sum_s / goal.final_trial_duration_s - 1e-9))
        allowed = math.floor(goal.exceed_ratio * needed + 1e-9)
        return cls(needed=needed, allowed=min(allowed, needed - 1))

    def verdict(self, losses: Sequence[float], goal_loss_ratio: float) -> bool | None:
        """True: a lower bound; False: an upper bound; None: needs another trial."""
        bad = sum(1 for loss in losses if loss > goal_loss_ratio)
        good = len(losses) - bad
        if good >= self.needed - self.allowed:
            return True
        if bad > self.allowed:
            return False
        return None


@dataclass
class _Bound:
    load_pps: float
    verified: bool
    hinted: bool = False  # provisional from a hint or a widening step, not min/max load

    @property
    def suspect(self) -> bool:
        return self.hinted and not self.verified


@dataclass
class _History:
    """Trials at the final duration by intended load, shared by all goals."""

    measure: MeasureFn
    duration_s: float
    by_load: dict[float, list[TrialResult]] = field(default_factory=dict)
    trials: list[TrialResult] = field(default_factory=list)

    def losses(self, load_pps: float) -> list[float]:
        return [t.loss_ratio for t in self.by_load.get(load_pps, [])]

    def decide(self, load_pps: float, goal: Goal, rule: Decision) -> bool:
        """Measure at the load until the rule decides, reusing earlier trials there."""
        while (verdict := rule.verdict(self.losses(load_pps), goal.loss_ratio)) is None:
            self.run(load_pps)
        return verdict

    def run(self, load_pps: float) -> TrialResult:
        if len(self.trials) >= MAX_TRIALS:
            raise SearchError(
                f"binary search used {MAX_TRIALS} trials without converging; the SUT's "
                "loss does not settle: check for a generator shortfall or an unstable DUT"
            )
        result = self.measure(self.duration_s, load_pps)
        if not result.valid:
            raise SearchError(f"the measure function returned an invalid trial at {load_pps}")
        self.by_load.setdefault(load_pps, []).append(result)
        self.trials.append(result)
        log.debug("trial %.0f pps %.0f s: loss %.3g", load_pps, self.duration_s, result.loss_ratio)
        return result

    def known(self, goal: Goal, rule: Decision) -> tuple[float | None, float | None]:
        """The highest load already decided as a lower bound and the lowest decided as
        an upper bound, without measuring."""
        lows, highs = [], []
        for load, results in self.by_load.items():
            verdict = rule.verdict([t.loss_ratio for t in results], goal.loss_ratio)
            if verdict is True:
                lows.append(load)
            elif verdict is False:
                highs.append(load)
        upper = min(highs) if highs else None
        lower_candidates = [x for x in lows if upper is None or x < upper]
        return (max(lower_candidates) if lower_candidates else None), upper


def _narrow(lo: _Bound, hi: _Bound, goal: Goal) -> bool:
    return (hi.load_pps - lo.load_pps) / hi.load_pps <= goal.relative_width


def _unsplittable(lo: _Bound, hi: _Bound) -> bool:
    return round((lo.load_pps + hi.load_pps) / 2) in (lo.load_pps, hi.load_pps)


class BinarySearch:
    """RFC 2544 binary search, or with `verification` the TST009 search with loss
    verification.  See the module docstring for the rules."""

    def __init__(self, verification: bool, name: str | None = None) -> None:
        self.verification = verification
        self.name = name or ("tst009-binary" if verification else "rfc2544-binary")

    def search(
        self,
        measure: MeasureFn,
        goals: Sequence[Goal],
        min_load_pps: float,
        max_load_pps: float,
        hints: SearchHints | None = None,
    ) -> SearchResult:
        check_search_args(goals, min_load_pps, max_load_pps)
        durations = {g.final_trial_duration_s for g in goals}
        if len(durations) != 1:
            raise SearchError(f"{self.name}: goals must share one final trial duration")
        history = _History(measure, durations.pop())
        results: dict[str, GoalResult] = {}
        for goal in sorted(goals, key=lambda g: g.loss_ratio):
            found = {name: r.lower_bound_pps for name, r in results.items()}
            hint = hints.for_goal(goal.name, found) if hints else (None, None)
            results[goal.name] = self._search_goal(history, goal, min_load_pps, max_load_pps, hint)
        return SearchResult(
            method=self.name,
            goals=tuple(results[g.name] for g in goals),
            trials=tuple(history.trials),
        )

    def _search_goal(
        self,
        history: _History,
        goal: Goal,
        min_pps: float,
        max_pps: float,
        hint: tuple[float | None, float | None],
    ) -> GoalResult:
        rule = Decision.for_goal(goal, self.verification)
        lo, hi = self._initial(history, goal, rule, min_pps=min_pps, max_pps=max_pps, hint=hint)
        if hi is None:
            # max load is a lower bound: the DUT forwards everything the ports carry
            return self._result(history, goal, rule, lo.load_pps, None)
        span = hi.load_pps - lo.load_pps
        step = span / 4  # doubled before each use: the first widening is half the span
        while True:
            self._bisect(history, goal, rule, (lo, hi), span)
            if not lo.verified:
                if history.decide(lo.load_pps, goal, rule):
                    lo.verified = True
                elif lo.load_pps <= min_pps:
                    # even min load loses too much: there is no lower bound
                    return self._result(history, goal, rule, None, lo.load_pps)
                else:
                    # the truth lies below the hint: move down, doubling the step
                    step *= 2
                    hi = _Bound(lo.load_pps, True)
                    lo = _Bound(max(min_pps, lo.load_pps - step), False, hinted=True)
                    span = hi.load_pps - lo.load_pps
                    continue
            if not hi.verified:
                if not history.decide(hi.load_pps, goal, rule):
                    hi.verified = True
                elif hi.load_pps >= max_pps:
                    return self._result(history, goal, rule, max_pps, None)
                else:
                    # the truth lies above the hint: move up, doubling the step
                    step *= 2
                    lo = _Bound(hi.load_pps, True)
                    hi = _Bound(min(max_pps, hi.load_pps + step), False, hinted=True)
                    span = hi.load_pps - lo.load_pps
                    continue
            if _narrow(lo, hi, goal) or _unsplittable(lo, hi):
                return self._result(history, goal, rule, lo.load_pps, hi.load_pps)

    @staticmethod
    def _bisect(
        history: _History, goal: Goal, rule: Decision, bounds: tuple[_Bound, _Bound], span: float
    ) -> None:
        """Halve [lo, hi] in place until it is narrow enough, or until it has closed in
        on a provisional end (to a quarter of `span`, the interval as it was set): that
        end is then verified before more trials are spent inside a wrong hint."""
        lo, hi = bounds
        while not _narrow(lo, hi, goal) and not _unsplittable(lo, hi):
            suspect = lo.suspect or hi.suspect
            if suspect and hi.load_pps - lo.load_pps <= EARLY_VERIFY_FRACTION * span:
                return
            mid = float(round((lo.load_pps + hi.load_pps) / 2))
            bound = lo if history.decide(mid, goal, rule) else hi
            bound.load_pps, bound.verified = mid, True

    def _initial(
        self,
        history: _History,
        goal: Goal,
        rule: Decision,
        *,
        min_pps: float,
        max_pps: float,
        hint: tuple[float | None, float | None],
    ) -> tuple[_Bound, _Bound | None]:
        """The starting interval: what earlier goals decided, else the hint, else the
        full range with a first trial at max load (RFC 2544 §26.1 starts at the
        maximum frame rate)."""
        known_lo, known_hi = history.known(goal, rule)
        hint_lo, hint_hi = hint
        if hint_lo is not None and hint_hi is not None and hint_hi > hint_lo:
            # A hint the trials so far already contradict keeps its width but moves next
            # to the bound that contradicts it, instead of falling back to the full range.
            width = hint_hi - hint_lo
            if known_lo is not None and hint_hi <= known_lo:
                hint_lo, hint_hi = None, known_lo + width
            elif known_hi is not None and hint_lo >= known_hi:
                hint_lo, hint_hi = known_hi - width, None
        lo = _Bound(known_lo, True) if known_lo is not None else _Bound(min_pps, False)
        hi = _Bound(known_hi, True) if known_hi is not None else None
        inside = hi is None or (hint_lo is not None and hint_lo < hi.load_pps)
        if hint_lo is not None and hint_lo > lo.load_pps and inside:
            lo = _Bound(float(round(min(max(hint_lo, min_pps), max_pps))), False, hinted=True)
        if hint_hi is not None and (hi is None or hint_hi < hi.load_pps):
            candidate = float(round(min(max(hint_hi, min_pps), max_pps)))
            if candidate > lo.load_pps:
                hi = _Bound(candidate, False, hinted=True)
        if hi is None:
            if history.decide(max_pps, goal, rule):
                return _Bound(max_pps, True), None
            hi = _Bound(max_pps, True)
        if hi.load_pps <= lo.load_pps:
            lo = _Bound(min_pps, False)
        return lo, hi

    def _result(
        self,
        history: _History,
        goal: Goal,
        rule: Decision,
        lower_pps: float | None,
        upper_pps: float | None,
    ) -> GoalResult:
        conditional = None
        if lower_pps is not None:
            # RFC 9971 §4.7.5 style: the load times one minus the loss ratio of the
            # worst trial among the good ones the decision needed
            losses = sorted(history.losses(lower_pps))
            index = min(len(losses), rule.needed - rule.allowed) - 1
            conditional = lower_pps * (1.0 - losses[index]) if losses else lower_pps
        return GoalResult(goal, lower_pps, upper_pps, conditional)
