"""The trial model: what a trial asks for, what it measured, and the seams around it.

Terms follow RFC 2544, RFC 9971 (MLRsearch) and ETSI GS NFV-TST 009:

- a *trial* is one traffic run at a fixed intended load for an intended duration;
- the *intended load* here is always the aggregate over all directions, in frames per
  second; a bidirectional trial at 2 Mpps sends 1 Mpps each way;
- the *offered count* is what the generator sent, the *forwarded count* what came back;
- the *loss ratio* is (offered - forwarded) / offered, over all directions.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol, runtime_checkable

from traffic.units import FrameSize, frame_label, line_rate_pps


class Direction(StrEnum):
    """Which ways the load flows between generator port 0 and port 1."""

    UNIDIRECTIONAL = "uni"  # port 0 -> CNF -> port 1
    BIDIRECTIONAL = "bidir"  # both ways, the load split evenly

    @property
    def lanes(self) -> tuple[tuple[int, int], ...]:
        """(tx port, rx port) pairs that carry load."""
        return ((0, 1),) if self is Direction.UNIDIRECTIONAL else ((0, 1), (1, 0))


class TrialKind(StrEnum):
    LEARNING = "learning"
    WARMUP = "warm-up"
    SEARCH = "search"
    LATENCY = "latency"
    SESSIONS = "sessions"
    DISRUPTION = "disruption"


@dataclass(frozen=True)
class Point:
    """One measured configuration of a sweep."""

    replicas: int
    frame_size: str  # an L2 size in bytes as text ("64") or a mix name ("IMIX")
    flows: int
    direction: Direction

    @property
    def key(self) -> str:
        return f"r{self.replicas}-{self.frame_size}-f{self.flows}-{self.direction.value}"


@dataclass(frozen=True)
class PortTarget:
    """How frames leaving a generator port must be addressed to reach the CNF."""

    port_id: int
    dst_mac: str | None = None
    vlan: int | None = None


@dataclass(frozen=True)
class StreamSpec:
    """The traffic of a trial apart from its rate and duration."""

    frame_size: FrameSize
    flows: int
    direction: Direction
    latency_rate_pps: float = 0.0  # per direction, fixed, not scaled by the load
    targets: tuple[PortTarget, ...] = ()
    # Per-replica steering: one destination MAC per ready replica per port.  Empty when
    # traffic reaches the replicas through a shared front that hashes flows.
    replica_macs: Mapping[int, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.flows < 1:
            raise ValueError(f"flows must be at least 1, got {self.flows}")
        if self.latency_rate_pps < 0:
            raise ValueError(f"latency_rate_pps must not be negative: {self.latency_rate_pps}")

    @property
    def frame_label(self) -> str:
        return frame_label(self.frame_size)

    def max_load_pps(self, port_speed_bps: float) -> float:
        """Aggregate line rate over the loaded directions, less the latency streams."""
        lanes = len(self.direction.lanes)
        per_lane = line_rate_pps(port_speed_bps, self.frame_size) - self.latency_rate_pps
        return per_lane * lanes


@dataclass(frozen=True)
class TrialSpec:
    streams: StreamSpec
    intended_load_pps: float  # aggregate over directions
    intended_duration_s: float
    kind: TrialKind = TrialKind.SEARCH

    def __post_init__(self) -> None:
        if not self.intended_load_pps > 0 or not math.isfinite(self.intended_load_pps):
            raise ValueError(f"intended load must be positive, got {self.intended_load_pps}")
        if not self.intended_duration_s > 0:
            raise ValueError(f"intended duration must be positive: {self.intended_duration_s}")

    @property
    def load_per_direction_pps(self) -> float:
        return self.intended_load_pps / len(self.streams.direction.lanes)


@dataclass(frozen=True)
class LaneCounts:
    """Frame counts of one direction of load, latency-stream frames excluded."""

    tx_port: int
    rx_port: int
    offered: int
    forwarded: int

    @property
    def lost(self) -> int:
        return self.offered - self.forwarded

    @property
    def label(self) -> str:
        return f"{self.tx_port}->{self.rx_port}"


@dataclass(frozen=True)
class LatencySummary:
    """One-way latency of a direction's latency stream, in microseconds."""

    min_us: float
    mean_us: float
    max_us: float
    p50_us: float
    p90_us: float
    p99_us: float
    p999_us: float
    samples: int = 0
    hdrh: str | None = None  # the HDR histogram, base64 compressed, as HdrHistogram encodes


@dataclass(frozen=True)
class TrialResult:
    """What one trial measured.  An invalid trial carries the reason and no verdict."""

    spec: TrialSpec
    measured_duration_s: float
    lanes: tuple[LaneCounts, ...]
    latency: Mapping[str, LatencySummary] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    valid: bool = True
    invalid_reason: str | None = None
    achieved_tx_pps: float | None = None
    started_at: float | None = None  # Unix time
    generator: str = ""

    @classmethod
    def invalid(cls, spec: TrialSpec, reason: str, started_at: float | None = None) -> TrialResult:
        return cls(
            spec=spec,
            measured_duration_s=0.0,
            lanes=(),
            valid=False,
            invalid_reason=reason,
            started_at=started_at,
        )

    @property
    def offered_count(self) -> int:
        return sum(lane.offered for lane in self.lanes)

    @property
    def forwarded_count(self) -> int:
        return sum(lane.forwarded for lane in self.lanes)

    @property
    def loss_ratio(self) -> float:
        """(offered - forwarded) / offered; frames duplicated by the DUT count as zero loss."""
        if not self.valid:
            raise ValueError(f"an invalid trial has no loss ratio ({self.invalid_reason})")
        offered = self.offered_count
        if offered <= 0:
            return 1.0
        return max(0.0, (offered - self.forwarded_count) / offered)

    @property
    def forwarding_rate_pps(self) -> float:
        if not self.valid or self.measured_duration_s <= 0:
            return 0.0
        return self.forwarded_count / self.spec.intended_duration_s


# --- goals and search ------------------------------------------------------------------


@dataclass(frozen=True)
class Goal:
    """A search goal in the sense of RFC 9971 §4.6.

    `loss_ratio` is the goal loss ratio; a trial with a higher loss ratio is a
    high-loss trial.  `exceed_ratio` is the share of trial-seconds (at the final trial
    duration) that may be high-loss while a load still counts as a lower bound.
    `relative_width` is the goal width: the search stops when upper and lower bound are
    closer than this fraction of the upper bound.
    """

    name: str
    loss_ratio: float
    exceed_ratio: float
    relative_width: float
    initial_trial_duration_s: float
    final_trial_duration_s: float
    duration_sum_s: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.loss_ratio < 1.0:
            raise ValueError(f"goal {self.name}: loss ratio must be in [0, 1): {self.loss_ratio}")
        if not 0.0 <= self.exceed_ratio < 1.0:
            raise ValueError(f"goal {self.name}: exceed ratio must be in [0, 1)")
        if not 0.0 < self.relative_width < 1.0:
            raise ValueError(f"goal {self.name}: relative width must be in (0, 1)")
        if not 0 < self.initial_trial_duration_s <= self.final_trial_duration_s:
            raise ValueError(f"goal {self.name}: need 0 < initial <= final trial duration")
        if self.duration_sum_s < self.final_trial_duration_s:
            raise ValueError(f"goal {self.name}: duration sum shorter than the final trial")


def _preset(
    final_s: float, sum_s: float, exceed: float, width: float, initial_s: float
) -> tuple[Goal, Goal]:
    ndr = Goal("NDR", 0.0, exceed, width, initial_s, final_s, sum_s)
    pdr = Goal("PDR", 0.005, exceed, width, initial_s, final_s, sum_s)
    return ndr, pdr


# Presets named in the methodology: RFC 2544 §26.1 (one 60 s trial decides, no exceed),
# TST009 §12.3 (repeated trials summing to 120 s, half of them may exceed the loss),
# and FD.io CSIT's quick settings (1 s trials summing to 21 s).
GOAL_PRESETS: Mapping[str, tuple[Goal, ...]] = {
    "rfc2544": _preset(60.0, 60.0, 0.0, 0.005, 1.0),
    "tst009": _preset(60.0, 120.0, 0.5, 0.005, 1.0),
    "quick": _preset(1.0, 21.0, 0.5, 0.005, 1.0),
}


@dataclass(frozen=True)
class GoalResult:
    goal: Goal
    lower_bound_pps: float | None  # the relevant lower bound; None when none was found
    upper_bound_pps: float | None
    conditional_throughput_pps: float | None


@dataclass(frozen=True)
class SearchHints:
    """Bounds carried over from a neighbouring point of the sweep (aggregate pps).

    `goal_bounds` maps a goal name to its own (lower, upper) estimate; `lower_pps` and
    `upper_pps` apply to every goal not named there.  `relative_bounds` maps a goal name
    to (reference goal, low ratio, high ratio): once the search has a lower bound for
    the reference goal, this goal's estimate is that bound times the ratios (PDR as a
    ratio of NDR is steadier across replica counts than either).  Hints are estimates,
    not measurements: a search must verify them and widen when the truth lies outside.
    """

    lower_pps: float | None = None
    upper_pps: float | None = None
    goal_bounds: Mapping[str, tuple[float | None, float | None]] = field(default_factory=dict)
    relative_bounds: Mapping[str, tuple[str, float, float]] = field(default_factory=dict)

    def for_goal(
        self, name: str, found: Mapping[str, float | None] | None = None
    ) -> tuple[float | None, float | None]:
        """The hint for goal `name`, given the lower bounds `found` so far."""
        relative = self.relative_bounds.get(name)
        if relative is not None and found:
            reference, low, high = relative
            basis = found.get(reference)
            if basis is not None:
                return basis * low, basis * high
        return self.goal_bounds.get(name, (self.lower_pps, self.upper_pps))


@dataclass(frozen=True)
class SearchResult:
    method: str
    goals: tuple[GoalResult, ...]
    trials: tuple[TrialResult, ...]

    @property
    def trial_seconds(self) -> float:
        return sum(t.spec.intended_duration_s for t in self.trials)

    def by_name(self, name: str) -> GoalResult:
        for result in self.goals:
            if result.goal.name == name:
                return result
        raise KeyError(name)


MeasureFn = Callable[[float, float], TrialResult]
"""``measure(duration_s, intended_load_pps) -> TrialResult``: the search's only view of
the generator.  It must return a valid result or raise; invalid trials are retried
below this seam and never reach a search."""


class Search(Protocol):
    name: str

    def search(
        self,
        measure: MeasureFn,
        goals: Sequence[Goal],
        min_load_pps: float,
        max_load_pps: float,
        hints: SearchHints | None = None,
    ) -> SearchResult: ...


@dataclass(frozen=True)
class GeneratorPort:
    port_id: int
    speed_bps: float
    mac: str
    driver: str = ""
    numa: int | None = None


@dataclass(frozen=True)
class GeneratorInfo:
    kind: str  # "trex" or "nfvbench"
    version: str
    client: str  # which client library drives it, and its version
    ports: tuple[GeneratorPort, ...]


@dataclass(frozen=True)
class TrafficSample:
    """One periodic sample of continuous traffic (counts since the previous sample)."""

    time_s: float  # since the start of the continuous traffic
    offered: int
    forwarded: int


@runtime_checkable
class Generator(Protocol):
    def open(self) -> GeneratorInfo: ...

    def run_trial(self, spec: TrialSpec) -> TrialResult: ...

    def start_continuous(self, streams: StreamSpec, load_pps: float) -> None: ...

    def sample_continuous(self) -> TrafficSample: ...

    def stop_continuous(self) -> Sequence[TrafficSample]: ...

    def close(self) -> None: ...
