"""The sweep-aware warm start: hints for the next point from the previous replica count.

A sweep measures the same traffic at increasing replica counts.  The throughput found
at R replicas, scaled by the replica ratio R'/R, estimates the throughput at R'; the
hint is that estimate with a relative margin either side.  Linear scaling is an
optimistic estimate when replicas contend for shared resources, which is why the
binary searches treat hints as provisional and widen when the truth lies outside.

Use one `SweepWarmStart` per sweep::

    warm = SweepWarmStart(margin=0.1)
    for point in ladder:
        hints = warm.hints_for(point)           # None for the first replica count
        result = search.search(measure, goals, min_pps, max_pps, hints)
        warm.record(point, result)
"""

from __future__ import annotations

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


def _family(point: Point) -> tuple[str, int, str]:
    return (point.frame_size, point.flows, point.direction.value)


@dataclass
class SweepWarmStart:
    """Remembers the last result per traffic configuration and hints the next one."""

    margin: float = 0.1
    _last: dict[tuple[str, int, str], tuple[int, SearchResult]] = field(default_factory=dict)

    def hints_for(self, point: Point) -> SearchHints | None:
        last = self._last.get(_family(point))
        if last is None:
            return None
        replicas, result = last
        return scaled_hints(result, replicas, point.replicas, self.margin)

    def record(self, point: Point, result: SearchResult) -> None:
        self._last[_family(point)] = (point.replicas, result)
