"""A measure function straight over the lab's data-plane model, for search tests and
benchmarks: no servers, no wall time, the same counts a lab trial would give.

`DataPlaneSut(...).measure(duration_s, load_pps)` is a `traffic.model.MeasureFn`;
`truth(loss_ratio)` is the model's ground truth for the same point.
"""

from __future__ import annotations

import dataclasses

from lab.dataplane import DataPlane, Lane, VendorModel, load_vendor
from traffic.model import Direction, LaneCounts, StreamSpec, TrialResult, TrialSpec

# Suite variants: how a clean model is turned noisy or bursty.
VARIANTS = {
    "clean": {"capacity_noise_cv": 0.0, "loss_burst_rate_per_s": 0.0},
    "noisy": {"capacity_noise_cv": 0.01},
    # rare loss bursts (about one trial in six at 60 s), capacity otherwise steady
    "bursty": {
        "capacity_noise_cv": 0.0,
        "loss_burst_rate_per_s": 0.003,
        "loss_burst_min_utilisation": 0.5,
    },
}


def variant_model(vendor: str, variant: str) -> VendorModel:
    return dataclasses.replace(load_vendor(vendor), **VARIANTS[variant])  # type: ignore[arg-type]


class DataPlaneSut:
    """A point (replicas, frame size, flows, direction) of a lab CNF model."""

    def __init__(
        self,
        model: VendorModel,
        replicas: int,
        seed: int,
        *,
        frame_size: int = 64,
        flows: int = 1024,
        direction: Direction = Direction.BIDIRECTIONAL,
        port_speed_bps: float = 25e9,
    ) -> None:
        noise = model.capacity_noise_cv > 0 or model.loss_burst_rate_per_s > 0
        self.plane = DataPlane(model, seed, (port_speed_bps, port_speed_bps), noise=noise)
        self.plane.set_replicas(replicas, at_s=-1e9)
        self.replicas = replicas
        self.frame_size = frame_size
        self.flows = flows
        self.direction = direction
        self.streams = StreamSpec(frame_size, flows, direction)
        self.port_speed_bps = port_speed_bps
        self.clock_s = 0.0
        self.trials = 0

    @property
    def max_load_pps(self) -> float:
        return self.streams.max_load_pps(self.port_speed_bps)

    def measure(self, duration_s: float, load_pps: float) -> TrialResult:
        spec = TrialSpec(self.streams, load_pps, duration_s)
        per_lane = spec.load_per_direction_pps
        lanes = [
            Lane(tx, rx, per_lane, ((self.frame_size, 1.0),), self.flows, measure_latency=False)
            for tx, rx in self.direction.lanes
        ]
        outcomes = self.plane.forward(lanes, self.clock_s, duration_s)
        self.clock_s += duration_s + 1.0
        self.trials += 1
        counts = tuple(
            LaneCounts(o.lane.tx_port, o.lane.rx_port, o.offered, o.forwarded) for o in outcomes
        )
        return TrialResult(spec=spec, measured_duration_s=duration_s, lanes=counts)

    def truth(self, loss_ratio: float) -> float:
        return self.plane.ground_truth(
            self.frame_size,
            self.flows,
            self.replicas,
            self.direction is Direction.BIDIRECTIONAL,
            loss_ratio=loss_ratio,
        )
