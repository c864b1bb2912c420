"""What a check may look at: the artifacts, the cluster, the generator, and the limits."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from bench.checks.artifacts import Artifacts
from bench.checks.registry import Need

DEFAULT_K8S_VERSION = "1.30"


@dataclass(frozen=True)
class DisruptionLimits:
    """The most a lifecycle event may cost under traffic; None means no limit."""

    lost_frames_max: int | None = None
    outage_s_max: float | None = None


@dataclass
class CheckContext:
    """Everything a check may use.  Fields a run does not have stay None.

    `cluster` is a `bench.cluster.Cluster` (the driver on the official client) with the
    CNF installed in `namespace`; `generator` an open `traffic.model.Generator`, with
    `streams` the traffic to send and `ndr_pps` the NDR measured for it (aggregate).
    `restarts_at_start` holds each container's restart count when the run began, so
    that "no restarts during the run" compares against it.
    """

    artifacts: Artifacts | None = None
    namespace: str = "cnf"
    workload_kind: str = "Deployment"
    workload_name: str | None = None
    k8s_version: str = DEFAULT_K8S_VERSION
    require_dual_stack: bool = False
    cluster: Any = None
    generator: Any = None
    streams: Any = None
    ndr_pps: float | None = None
    load_fraction: float = 0.5
    sample_interval_s: float = 0.1  # in the generator's time base
    time_scale: float = 1.0  # generator time per wall second (a lab runs faster)
    limits: DisruptionLimits = DisruptionLimits()
    ready_timeout_s: float = 300.0  # in the cluster's time base
    poll_s: float = 1.0  # how often the checks look at the cluster, same time base
    metrics_port: int | None = None
    metrics_path: str = "/metrics"
    restarts_at_start: dict[str, int] | None = None
    allowed_ips: tuple[str, ...] = ()

    def missing(self, needs: Iterable[Need]) -> set[str]:
        have = {
            Need.ARTIFACTS: self.artifacts is not None,
            Need.CLUSTER: self.cluster is not None and self.workload_name is not None,
            Need.GENERATOR: self.generator is not None
            and self.streams is not None
            and self.ndr_pps is not None,
        }
        return {n.value for n in needs if not have[n]}
