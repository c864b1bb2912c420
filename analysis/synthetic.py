"""Synthetic runs with a known ground truth, for tests, benchmarks and rehearsals.

A synthetic run is what a sweep would journal for a CNF whose throughput follows the
Universal Scalability Law exactly, X(R) = λR / (1 + σ(R−1) + κR(R−1)), capped by the
NIC's line rate, with multiplicative trial-to-trial noise.  Latency grows with load as
in an M/M/1 queue (sojourn time ∝ 1/(1−ρ)); session capacity grows with replicas under
the same law.  Nothing here writes files: `SyntheticRun.records` are the bodies that the
results store appends, in order, so that the data goes through the one writer of run
directories exactly as a real run's does.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from hdrh.histogram import HdrHistogram

from traffic.model import (
    Direction,
    LaneCounts,
    LatencySummary,
    Point,
    StreamSpec,
    TrialKind,
    TrialResult,
    TrialSpec,
)
from traffic.units import line_rate_pps, mean_l2_bytes, parse_frame_size, pps_to_l1_bps

HDR_LOWEST_US = 1
HDR_HIGHEST_US = 60_000_000
HDR_SIGNIFICANT_DIGITS = 3


@dataclass(frozen=True)
class VendorModel:
    """The ground truth of one synthetic CNF."""

    vendor: str
    cnf: str
    product: str
    lambda_64_pps: float  # one replica's capacity at 64-byte frames (aggregate)
    sigma: float  # USL serial fraction
    kappa: float  # USL crosstalk
    byte_cost: float = 0.0025  # capacity(size) = λ64 / (1 + byte_cost · (size − 64))
    noise_cv: float = 0.01  # trial-to-trial relative spread of the capacity
    base_latency_us: float = 8.0
    sessions_per_replica: int = 400_000
    chart_version: str = "1.0.0"

    def capacity_pps(self, replicas: int, frame_size: str) -> float:
        size = mean_l2_bytes(parse_frame_size(frame_size))
        one = self.lambda_64_pps / (1.0 + self.byte_cost * (size - 64.0))
        return usl(replicas, one, self.sigma, self.kappa)


def usl(replicas: float, lambda_pps: float, sigma: float, kappa: float) -> float:
    """Gunther's Universal Scalability Law, X(R) = λR / (1 + σ(R−1) + κR(R−1))."""
    r = replicas
    return lambda_pps * r / (1.0 + sigma * (r - 1.0) + kappa * r * (r - 1.0))


# Three demo vendors, named as the bundled CNF profiles name them.
DEMO_VENDORS: tuple[VendorModel, ...] = (
    VendorModel("fdio-like", "vpp-router", "VPP-like router", 9.0e6, 0.02, 0.0008),
    VendorModel(
        "acme-fw",
        "stateful-firewall",
        "Stateful firewall",
        6.0e6,
        0.06,
        0.004,
        base_latency_us=14.0,
        sessions_per_replica=1_000_000,
    ),
    VendorModel(
        "natco",
        "cgnat",
        "Carrier-grade NAT",
        4.5e6,
        0.10,
        0.012,
        noise_cv=0.02,
        base_latency_us=20.0,
        sessions_per_replica=2_000_000,
    ),
)


@dataclass(frozen=True)
class SyntheticSpec:
    vendor: VendorModel
    replicas: tuple[int, ...] = (1, 2, 3, 4, 6, 8)
    frame_sizes: tuple[str, ...] = ("64", "IMIX")
    flows: int = 10_000
    direction: str = "bidir"
    repeats: int = 3  # throughput searches per point
    trials_per_search: int = 14
    trial_duration_s: float = 10.0
    port_speed_bps: float = 25e9
    latency_fractions: tuple[float, ...] = (0.1, 0.5, 0.9, 1.0)
    latency_samples: int = 1500
    session_flow_counts: tuple[int, ...] = (1_000, 10_000, 100_000, 1_000_000, 10_000_000)
    seed: int = 1
    testbed_name: str = "embedded-lab"
    nic_model: str = "Intel E810-XXV (emulated)"
    run_id: str | None = None
    started_at: float = 1_800_000_000.0
    generator_short_at: tuple[int, str] | None = None  # (replicas, frame) where TX falls short


@dataclass
class SyntheticRun:
    run_id: str
    manifest: dict[str, Any]
    # (record type, body): trial bodies are {"result", "point", "extra"} for append_trial
    records: list[tuple[str, dict[str, Any]]]
    truth: dict[str, Any] = field(default_factory=dict)


def testbed_fingerprint(spec: SyntheticSpec) -> dict[str, Any]:
    return {
        "nic_model": spec.nic_model,
        "nic_driver": "vfio-pci",
        "link_speed_bps": spec.port_speed_bps,
        "sriov_vfs": 8,
        "hugepages": {"size": "1Gi", "count": 16},
        "cpu_model": "emulated",
        "cluster_version": "1.30",
    }


def fingerprint_sha256(fingerprint: dict[str, Any]) -> str:
    canonical = json.dumps(fingerprint, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _manifest(spec: SyntheticSpec, run_id: str) -> dict[str, Any]:
    v = spec.vendor
    fingerprint = testbed_fingerprint(spec)
    profile_text = f"kind: traffic\nname: synthetic\nframe_sizes: {list(spec.frame_sizes)}\n"
    digest = hashlib.sha256(v.cnf.encode()).hexdigest()
    return {
        "started_at": spec.started_at,
        "finished_at": spec.started_at + 3600.0,
        "cnf": {
            "name": v.cnf,
            "vendor": v.vendor,
            "product": v.product,
            "chart": {"name": v.cnf, "version": v.chart_version, "digest": f"sha256:{digest}"},
            "images": [{"name": f"registry.local/{v.vendor}/{v.cnf}:1.0", "digest": digest}],
        },
        "testbed": {
            "name": spec.testbed_name,
            "fingerprint": fingerprint,
            "fingerprint_sha256": fingerprint_sha256(fingerprint),
            "comparison": {
                key: {"expected": value, "actual": value, "match": True}
                for key, value in fingerprint.items()
                if key in ("nic_model", "nic_driver", "link_speed_bps", "sriov_vfs")
            },
        },
        "versions": {"cnfbench": "0.1.0", "trex": "v3.04 (synthetic)", "python": "3.11"},
        "profiles": {
            "traffic": {
                "path": "profiles/traffic/synthetic.yaml",
                "sha256": hashlib.sha256(profile_text.encode()).hexdigest(),
                "content": profile_text,
            }
        },
        "methodology": {
            "method": "mlrsearch",
            "preset": "tst009",
            "goals": [
                {"name": "NDR", "loss_ratio": 0.0, "exceed_ratio": 0.5, "relative_width": 0.005},
                {"name": "PDR", "loss_ratio": 0.005, "exceed_ratio": 0.5, "relative_width": 0.005},
            ],
            "frame_sizes": list(spec.frame_sizes),
            "flow_counts": [spec.flows],
            "directions": [spec.direction],
            "replicas": list(spec.replicas),
            "initial_trial_duration_s": 1.0,
            "final_trial_duration_s": spec.trial_duration_s,
        },
        "generator": {"kind": "trex", "version": "v3.04", "client": "synthetic"},
        "lab": {"seed": spec.seed, "time_scale": 200, "synthetic": True},
        "status": "done",
    }


def _trial(
    point: Point,
    *,
    load_pps: float,
    capacity_pps: float,
    duration_s: float,
    kind: TrialKind,
    short_fraction: float,
    latency: dict[str, LatencySummary] | None = None,
) -> TrialResult:
    streams = StreamSpec(parse_frame_size(point.frame_size), point.flows, point.direction)
    spec = TrialSpec(streams, load_pps, duration_s, kind)
    sent_pps = load_pps * short_fraction
    forwarded_pps = min(sent_pps, capacity_pps)
    lanes_n = len(point.direction.lanes)
    offered = int(sent_pps * duration_s / lanes_n)
    forwarded = int(forwarded_pps * duration_s / lanes_n)
    lanes = tuple(LaneCounts(tx, rx, offered, forwarded) for tx, rx in point.direction.lanes)
    warnings: tuple[str, ...] = ()
    if short_fraction < 0.99:
        warnings = (f"TX rate {sent_pps:.0f} pps is short of the intended {load_pps:.0f} pps",)
    return TrialResult(
        spec=spec,
        measured_duration_s=duration_s,
        lanes=lanes,
        latency=latency or {},
        warnings=warnings,
        achieved_tx_pps=sent_pps,
        generator="trex",
    )


def encode_latencies_us(values_us: np.ndarray) -> str:
    hist = HdrHistogram(HDR_LOWEST_US, HDR_HIGHEST_US, HDR_SIGNIFICANT_DIGITS)
    rounded, counts = np.unique(np.clip(np.rint(values_us), 1, HDR_HIGHEST_US), return_counts=True)
    for value, count in zip(rounded, counts, strict=True):
        hist.record_value(int(value), int(count))
    encoded = hist.encode()
    return encoded.decode("ascii") if isinstance(encoded, bytes) else str(encoded)


def _latency_summary(values_us: np.ndarray) -> LatencySummary:
    q = np.percentile(values_us, [50, 90, 99, 99.9])
    return LatencySummary(
        min_us=float(values_us.min()),
        mean_us=float(values_us.mean()),
        max_us=float(values_us.max()),
        p50_us=float(q[0]),
        p90_us=float(q[1]),
        p99_us=float(q[2]),
        p999_us=float(q[3]),
        samples=int(values_us.size),
        hdrh=encode_latencies_us(values_us),
    )


def _latency_values(
    rng: np.random.Generator, base_us: float, utilisation: float, n: int
) -> np.ndarray:
    # M/M/1 sojourn time grows as 1/(1 − ρ); cap ρ so the NDR point stays finite.
    rho = min(utilisation, 0.97)
    scale = base_us * (1.0 + 0.3 * rho / (1.0 - rho))
    return np.asarray(base_us * 0.6 + rng.exponential(scale, n) + rng.lognormal(0.0, 0.3, n))


def _search(
    rng: np.random.Generator,
    spec: SyntheticSpec,
    *,
    point: Point,
    capacity_pps: float,
    line_pps: float,
    search_id: str,
    short: float,
) -> tuple[list[tuple[str, dict[str, Any]]], float]:
    """A bisection between 1 % and 100 % of line rate; returns trials and the NDR."""
    records: list[tuple[str, dict[str, Any]]] = []
    trial_cap = capacity_pps * float(np.exp(rng.normal(0.0, spec.vendor.noise_cv)))
    lower, upper = 0.01 * line_pps, line_pps
    for number in range(spec.trials_per_search):
        load = upper if number == 0 else (lower + upper) / 2
        result = _trial(
            point,
            load_pps=load,
            capacity_pps=trial_cap,
            duration_s=spec.trial_duration_s,
            kind=TrialKind.SEARCH,
            short_fraction=short,
        )
        extra = {"point_key": point.key, "search_id": search_id, "phase": "search"}
        records.append(("trial", {"result": result, "point": point, "extra": extra}))
        if result.forwarded_count >= result.offered_count:
            lower = load
            if number == 0:
                upper = load
        else:
            upper = load
    return records, min(lower, trial_cap)


def _throughput(
    spec: SyntheticSpec, point: Point, ndr: float, line_pps: float, search_id: str
) -> dict[str, Any]:
    size = parse_frame_size(point.frame_size)
    pdr = min(ndr * 1.015, line_pps)
    goals = []
    for name, ratio, value in (("NDR", 0.0, ndr), ("PDR", 0.005, pdr)):
        goals.append(
            {
                "name": name,
                "loss_ratio": ratio,
                "exceed_ratio": 0.5,
                "relative_width": 0.005,
                "final_trial_duration_s": spec.trial_duration_s,
                "duration_sum_s": 2 * spec.trial_duration_s,
                "lower_bound_pps": value,
                "upper_bound_pps": value * 1.005,
                "conditional_throughput_pps": value,
            }
        )
    return {
        "point": _point_body(point),
        "measure": "throughput",
        "method": "mlrsearch",
        "preset": "tst009",
        "goals": goals,
        "ndr_pps": ndr,
        "pdr_pps": pdr,
        "ndr_l1_bps": pps_to_l1_bps(ndr, size),
        "pdr_l1_bps": pps_to_l1_bps(pdr, size),
        "line_rate_pps": line_pps,
        "trial_seconds": spec.trials_per_search * spec.trial_duration_s,
        "trials": spec.trials_per_search,
        "search_id": search_id,
    }


def _point_body(point: Point) -> dict[str, Any]:
    return {
        "replicas": point.replicas,
        "frame_size": point.frame_size,
        "flows": point.flows,
        "direction": point.direction.value,
    }


def _latency_records(
    rng: np.random.Generator, spec: SyntheticSpec, point: Point, ndr: float, cap: float
) -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    for fraction in spec.latency_fractions:
        load = ndr * fraction
        label = "NDR" if fraction == 1.0 else f"{fraction:.0%}"
        per_lane: dict[str, LatencySummary] = {}
        merged: list[np.ndarray] = []
        for tx, rx in point.direction.lanes:
            values = _latency_values(
                rng, spec.vendor.base_latency_us, load / cap, spec.latency_samples
            )
            per_lane[f"{tx}->{rx}"] = _latency_summary(values)
            merged.append(values)
        trial = _trial(
            point,
            load_pps=load,
            capacity_pps=cap,
            duration_s=spec.trial_duration_s,
            kind=TrialKind.LATENCY,
            short_fraction=1.0,
            latency=per_lane,
        )
        extra = {"point_key": point.key, "phase": f"latency-{label}"}
        out.append(("trial", {"result": trial, "point": point, "extra": extra}))
        summary = _latency_summary(np.concatenate(merged))
        out.append(
            (
                "point",
                {
                    "point": _point_body(point),
                    "measure": "latency",
                    "load_label": label,
                    "load_pps": load,
                    "latency": {
                        k: getattr(summary, k)
                        for k in (
                            "min_us",
                            "mean_us",
                            "max_us",
                            "p50_us",
                            "p90_us",
                            "p99_us",
                            "p999_us",
                            "samples",
                            "hdrh",
                        )
                    },
                },
            )
        )
    return out


def _sessions_record(spec: SyntheticSpec, replicas: int) -> tuple[str, dict[str, Any]]:
    v = spec.vendor
    capacity = int(usl(replicas, v.sessions_per_replica, v.sigma, v.kappa))
    tested = [n for n in spec.session_flow_counts if n <= capacity]
    point = Point(replicas, spec.frame_sizes[0], spec.flows, Direction(spec.direction))
    return (
        "point",
        {
            "point": _point_body(point),
            "measure": "sessions",
            "session_capacity_flows": capacity,
            "flows_tested": tested,
        },
    )


def synthetic_run(spec: SyntheticSpec) -> SyntheticRun:
    """Every record of one run of `spec.vendor` on a synthetic testbed, in journal order."""
    v = spec.vendor
    rng = np.random.default_rng([spec.seed, zlib.crc32(v.vendor.encode())])
    run_id = spec.run_id or f"20270101T000000Z-{v.cnf}-s{spec.seed}"
    records: list[tuple[str, dict[str, Any]]] = [
        ("stage", {"stage": "sweep", "status": "running"})
    ]
    truth: dict[str, Any] = {"sigma": v.sigma, "kappa": v.kappa, "capacity_pps": {}}
    direction = Direction(spec.direction)
    lanes = len(direction.lanes)
    for replicas in spec.replicas:
        for frame in spec.frame_sizes:
            point = Point(replicas, frame, spec.flows, direction)
            line_pps = line_rate_pps(spec.port_speed_bps, parse_frame_size(frame)) * lanes
            cap = v.capacity_pps(replicas, frame)
            truth["capacity_pps"][point.key] = cap
            short = 0.9 if spec.generator_short_at == (replicas, frame) else 1.0
            ndrs = []
            for repeat in range(spec.repeats):
                search_id = f"{point.key}-{repeat}"
                trials, ndr = _search(
                    rng,
                    spec,
                    point=point,
                    capacity_pps=cap,
                    line_pps=line_pps,
                    search_id=search_id,
                    short=short,
                )
                records.extend(trials)
                records.append(("point", _throughput(spec, point, ndr, line_pps, search_id)))
                ndrs.append(ndr)
            records.extend(_latency_records(rng, spec, point, float(np.mean(ndrs)), cap))
        records.append(_sessions_record(spec, replicas))
    records.append(("stage", {"stage": "sweep", "status": "done"}))
    truth["lambda_pps"] = {f: v.capacity_pps(1, f) for f in spec.frame_sizes}
    return SyntheticRun(run_id, _manifest(spec, run_id), records, truth)


def demo_specs(seeds: Sequence[int] = (1,), **overrides: Any) -> list[SyntheticSpec]:
    """One spec per demo vendor and seed."""
    return [
        SyntheticSpec(vendor=v, seed=seed, **overrides) for v in DEMO_VENDORS for seed in seeds
    ]


class RunWriter(Protocol):
    """What `write_run` needs of the results store (`bench.store.RunStore` provides it)."""

    directory: Path

    def append(self, record_type: str, **fields: Any) -> dict[str, Any]: ...

    def append_trial(self, result: TrialResult, point: Point | None, **extra: Any) -> None: ...

    def compact(self) -> dict[str, int]: ...

    def close(self) -> None: ...


def write_run(
    run: SyntheticRun,
    root: Path,
    create: Callable[[Path, str, dict[str, Any]], RunWriter],
    compact: bool = True,
) -> Path:
    """Journal `run` through the store's `create` (e.g. ``RunStore.create``); its directory."""
    store = create(root, run.run_id, run.manifest)
    try:
        for kind, body in run.records:
            if kind == "trial":
                store.append_trial(body["result"], body["point"], **body["extra"])
            else:
                store.append(kind, **body)
        if compact:
            store.compact()
    finally:
        store.close()
    return store.directory
