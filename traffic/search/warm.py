"""The sweep-aware warm start: hints for the next point from the previous replica count.

A sweep measures the same traffic at increasing replica counts.  After the first replica
count, the throughput found at R replicas scaled by the replica ratio R'/R estimates the
throughput at R' (`scaled_hints`); once two or more counts are measured, a fit of the
Universal Scalability Law to them does (`usl_estimate`), since replicas that contend
for shared resources scale less than linearly.  The hint is the estimate with a
relative margin either side.  Hints are estimates: the binary searches treat them as
provisional bounds and widen when the truth lies outside.

The curve is fitted to the goal with the highest loss ratio (the PDR of the presets),
and every other goal's estimate is that curve times the goal's median ratio to it at
the points measured.  A zero-loss bound is the one a single transient loss event drags
down at random, so a curve through the NDRs of a noisy or bursty CNF extrapolates its
accidents; the PDR's curve is steadier, and the NDR/PDR ratio varies little with the
replica count.

Use one `SweepWarmStart` per sweep::

    warm = SweepWarmStart(margin=0.1)
    for point in ladder:
        hints = warm.hints_for(point)           # None for the first replica count
        result = search.search(measure, goals, min_pps, max_pps, hints)
        warm.record(point, result)
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

from traffic.model import Point, SearchHints, SearchResult


def scaled_hints(
    previous: SearchResult, previous_replicas: int, replicas: int, margin: float
) -> SearchHints:
    """Per-goal bounds: the previous conditional throughput (or lower bound) times the
    replica ratio, widened by `margin` on both sides."""
    if previous_replicas < 1 or replicas < 1:
        raise ValueError(f"replica counts must be positive: {previous_replicas}, {replicas}")
    if not 0 <= margin < 1:
        raise ValueError(f"warm start margin must be in [0, 1): {margin}")
    ratio = replicas / previous_replicas
    bounds: dict[str, tuple[float | None, float | None]] = {}
    for result in previous.goals:
        basis = result.lower_bound_pps
        if basis is None:
            continue
        estimate = basis * ratio
        bounds[result.goal.name] = (estimate * (1 - margin), estimate * (1 + margin))
    return SearchHints(goal_bounds=bounds)


def usl_estimate(points: Sequence[tuple[int, float]], replicas: int) -> float:
    """The throughput at `replicas` predicted from measured (replicas, throughput) points.

    One point: linear scaling.  Two or more: a least-squares fit of the Universal
    Scalability Law (Gunther), ``X(N) = N X1 / (1 + sigma (N - 1) + kappa N (N - 1))``,
    linearised as ``N X1 / X(N) - 1 = sigma (N - 1) + kappa N (N - 1)`` with X1 taken
    from the smallest replica count (extrapolated to one replica); with two points kappa
    is held at zero.  Coefficients are kept at zero or above.
    """
    if not points:
        raise ValueError("need at least one measured point")
    ordered = sorted(points)
    base_n, base_x = ordered[0]
    if len(ordered) == 1:
        return base_x * replicas / base_n
    # X1 from the base point under the fit is unknown; iterate twice from linear.
    x1 = base_x / base_n
    sigma = kappa = 0.0
    for _ in range(3):
        rows = [(n - 1.0, n * (n - 1.0), n * x1 / x - 1.0) for n, x in ordered if x > 0]
        sigma, kappa = _fit(rows, with_kappa=len(ordered) >= 3)
        x1 = base_x * (1 + sigma * (base_n - 1) + kappa * base_n * (base_n - 1)) / base_n
    return replicas * x1 / (1 + sigma * (replicas - 1) + kappa * replicas * (replicas - 1))


def _fit(rows: Sequence[tuple[float, float, float]], with_kappa: bool) -> tuple[float, float]:
    """Non-negative least squares for y = sigma a + kappa b, by cases (two unknowns)."""
    saa = sum(a * a for a, _, _ in rows)
    sbb = sum(b * b for _, b, _ in rows)
    sab = sum(a * b for a, b, _ in rows)
    say = sum(a * y for a, _, y in rows)
    sby = sum(b * y for _, b, y in rows)
    sigma_only = max(0.0, say / saa) if saa > 0 else 0.0
    if not with_kappa:
        return sigma_only, 0.0
    det = saa * sbb - sab * sab
    if det > 1e-12:
        sigma = (say * sbb - sby * sab) / det
        kappa = (sby * saa - say * sab) / det
        if sigma >= 0 and kappa >= 0:
            return sigma, kappa
    kappa_only = max(0.0, sby / sbb) if sbb > 0 else 0.0

    def sse(sig: float, kap: float) -> float:
        return sum((y - sig * a - kap * b) ** 2 for a, b, y in rows)

    candidates = [(sigma_only, 0.0), (0.0, kappa_only)]
    return min(candidates, key=lambda c: sse(*c))


def _relative_bounds(result: SearchResult) -> dict[str, tuple[str, float, float]]:
    """Each goal after the lowest-loss one, as a ratio of that goal's lower bound.

    With excess ``e = lower / reference - 1`` at the previous point, the hint spans
    ``1 + e / 2`` to ``1 + 2 e + w`` (w the goal's relative width), so a steady ratio
    needs a trial or two to confirm and a changed one is found by widening.
    """
    found = [g for g in result.goals if g.lower_bound_pps is not None]
    if len(found) < 2:
        return {}
    reference = min(found, key=lambda g: g.goal.loss_ratio)
    assert reference.lower_bound_pps is not None
    out = {}
    for g in found:
        if g is reference or g.goal.loss_ratio <= reference.goal.loss_ratio:
            continue
        assert g.lower_bound_pps is not None
        excess = max(0.0, g.lower_bound_pps / reference.lower_bound_pps - 1.0)
        width = g.goal.relative_width
        out[g.goal.name] = (reference.goal.name, 1.0 + excess / 2, 1.0 + 2 * excess + width)
    return out


def _family(point: Point) -> tuple[str, int, str]:
    return (point.frame_size, point.flows, point.direction.value)


@dataclass
class SweepWarmStart:
    """Remembers the results per traffic configuration and hints the next replica count.

    Hints centre on `usl_estimate` of the lower bounds of the goal with the highest
    loss ratio measured so far, times each goal's median ratio to it, with `margin`
    either side (see the module docstring).
    """

    margin: float = 0.1
    _done: dict[tuple[str, int, str], list[tuple[int, SearchResult]]] = field(default_factory=dict)

    def hints_for(self, point: Point) -> SearchHints | None:
        done = [(r, res) for r, res in self._done.get(_family(point), []) if r != point.replicas]
        if not done:
            return None
        estimates = anchored_estimates(done, point.replicas)
        bounds: dict[str, tuple[float | None, float | None]] = {
            name: (estimate * (1 - self.margin), estimate * (1 + self.margin))
            for name, estimate in estimates.items()
        }
        return SearchHints(goal_bounds=bounds, relative_bounds=_relative_bounds(done[-1][1]))

    def record(self, point: Point, result: SearchResult) -> None:
        self._done.setdefault(_family(point), []).append((point.replicas, result))


def anchored_estimates(
    done: Sequence[tuple[int, SearchResult]], replicas: int
) -> dict[str, float]:
    """Per goal, the throughput expected at `replicas` from the (replicas, result) pairs
    measured: the USL curve of the highest-loss goal's lower bounds, times the goal's
    median ratio to that goal over the replica counts where both were found."""
    found: dict[int, dict[str, float]] = {}
    loss_ratios: dict[str, float] = {}
    for measured, result in done:
        for outcome in result.goals:
            loss_ratios[outcome.goal.name] = outcome.goal.loss_ratio
            if outcome.lower_bound_pps is not None and outcome.lower_bound_pps > 0:
                found.setdefault(measured, {})[outcome.goal.name] = outcome.lower_bound_pps
    out: dict[str, float] = {}
    # anchors in order of preference: the highest loss ratio first, falling back to the
    # next when a goal found no lower bound anywhere
    for anchor in sorted(loss_ratios, key=lambda name: -loss_ratios[name]):
        points = [(r, bounds[anchor]) for r, bounds in found.items() if anchor in bounds]
        if not points:
            continue
        curve = usl_estimate(points, replicas)
        for name in loss_ratios:
            if name in out:
                continue
            ratios = [b[name] / b[anchor] for b in found.values() if name in b and anchor in b]
            if ratios:
                out[name] = curve * statistics.median(ratios)
    return out
