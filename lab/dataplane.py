"""A seeded model of a CNF data plane: R replicas between two generator ports.

Traffic enters on a generator port, crosses the CNF and leaves on the other port
(port 0 -> CNF -> port 1, and back when bidirectional).  Each phenomenon that shapes a
real scaling curve comes from one named parameter of a `VendorModel`:

- capacity of one replica, in packets per second, is its CPU clock over its cost per
  packet: ``cpu_hz / (cycles_per_packet + cycles_per_byte * L2_bytes + miss_cost)``, so
  small frames are CPU-bound and large frames meet the line rate first;
- the line rate of each port (L1: 20 bytes of preamble and gap per frame, IEEE 802.3
  clause 4.4.2) is a hard ceiling on what a port sends and receives;
- flows are hashed across replicas (symmetric hashing: both directions of flow *i* land
  on the same replica), and the busiest replica sets the zero-loss limit;
- a flow cache per replica: with *n* active flows on a replica and *C* cache entries, the
  miss ratio is ``max(0, 1 - C / n)`` and each miss costs `flow_cache_miss_cycles`;
- a session table per replica: sessions beyond `session_table_entries` are not admitted
  and all their packets are dropped;
- contention between replicas follows the Universal Scalability Law (Gunther):
  ``X(N) = N X(1) / (1 + sigma (N - 1) + kappa N (N - 1))``, applied as a per-replica
  factor, so aggregate capacity bends and can fall;
- latency is a base latency plus jitter plus the wait in a finite per-replica queue;
  the mean wait follows the M/D/1 Pollaczek-Khinchine formula
  ``W = rho S / (2 (1 - rho))`` with S the service time of one batch, drawn as an
  exponential tail truncated at the buffer depth, so percentiles widen near saturation;
- trial-to-trial noise scales capacity by a log-normal factor, and rare short loss
  bursts (a Poisson process in virtual time) drop everything for a few milliseconds
  when a replica is busy;
- receive livelock: above capacity a replica forwards
  ``capacity * max(floor, 1 - slope * (rho - 1))``, less than its capacity;
- a warm-up ramp after a replica becomes ready, and loss of a removed replica's share
  of flows until the front rehashes them onto the others (`rehash_s`).

Loss is deterministic below capacity: a poll-mode data plane with a finite buffer does
not drop at a utilisation below one, so the true NDR is exactly the capacity of the
bottleneck.  Everything random is drawn from generators seeded with ``(seed, trial, ...)``,
so a lab with the same seed running the same trials gives the same counts.

Units: rates in packets per second (pps), times in virtual seconds (``_s``), latency in
microseconds (``_us``), frame sizes are L2 bytes including the FCS.
"""

from __future__ import annotations

import itertools
import logging
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from hdrh.histogram import HdrHistogram

from lab.errors import LabError, VendorModelError

log = logging.getLogger(__name__)

WIRE_OVERHEAD_BYTES = 20  # preamble + SFD (8) and inter-frame gap (12), IEEE 802.3 4.4.2
PDR_LOSS_RATIO = 0.005
HDR_LOWEST_US = 1
HDR_HIGHEST_US = 10_000_000
HDR_SIGNIFICANT_DIGITS = 3
_LATENCY_DRAWS = 1024  # samples that shape one replica's latency distribution per slice
_WARMUP_SLICES = 8
VENDORS_DIR = Path(__file__).resolve().parent / "vendors"
FORGET_AFTER_S = 3600.0  # removed replicas are kept this long for windows in the past


# --- vendor models ---------------------------------------------------------------------


@dataclass(frozen=True)
class VendorModel:
    """The parameters of one vendor's CNF, per replica unless said otherwise."""

    name: str
    description: str
    cpu_hz: float  # clock of the cores one replica polls with, cycles per second
    cycles_per_packet: float  # fixed cost of one packet
    cycles_per_byte: float  # cost per L2 byte (checksums, copies, crypto)
    flow_cache_entries: int  # 0: no flow cache (every packet costs the same)
    flow_cache_miss_cycles: float  # extra cycles of a packet that misses the cache
    session_table_entries: int  # 0: stateless; else sessions beyond it are dropped
    usl_sigma: float  # USL serial fraction (contention)
    usl_kappa: float  # USL crosstalk (coherency)
    base_latency_us: float  # latency of an idle replica, one way
    latency_jitter_us: float  # mean of the exponential jitter added to each packet
    batch_packets: int  # packets served per batch (vector); sets the queueing unit
    queue_buffer_packets: int  # receive buffer; bounds the queueing delay
    capacity_noise_cv: float  # coefficient of variation of capacity between trials
    loss_burst_rate_per_s: float  # mean number of loss bursts per virtual second
    loss_burst_duration_s: float  # length of one burst; everything in it is lost
    loss_burst_min_utilisation: float  # bursts only hurt a replica at least this busy
    livelock_slope: float  # fraction of capacity lost per unit of overload
    livelock_floor: float  # forwarding never falls below this fraction of capacity
    warmup_s: float  # ramp from `warmup_start_fraction` to full capacity after ready
    warmup_start_fraction: float
    rehash_s: float  # a removed replica's flows are lost for this long

    def __post_init__(self) -> None:
        positive = ("cpu_hz", "cycles_per_packet", "batch_packets", "queue_buffer_packets")
        for name in positive:
            if not getattr(self, name) > 0:
                raise VendorModelError(f"vendor {self.name}: {name} must be positive")
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, int | float) and (value < 0 or not math.isfinite(value)):
                raise VendorModelError(
                    f"vendor {self.name}: {f.name} must be finite and not negative: {value}"
                )
        for name in ("livelock_floor", "warmup_start_fraction", "loss_burst_min_utilisation"):
            if getattr(self, name) > 1:
                raise VendorModelError(f"vendor {self.name}: {name} must be at most 1")

    def usl_factor(self, replicas: int) -> float:
        """Per-replica share of capacity left by contention among `replicas` (USL)."""
        n = max(1, replicas)
        return 1.0 / (1.0 + self.usl_sigma * (n - 1) + self.usl_kappa * n * (n - 1))

    def cycles_for(self, l2_bytes: float, active_flows: float) -> float:
        """Cycles one packet of `l2_bytes` costs on a replica holding `active_flows`."""
        miss_ratio = 0.0
        if self.flow_cache_entries > 0 and active_flows > self.flow_cache_entries:
            miss_ratio = 1.0 - self.flow_cache_entries / active_flows
        return (
            self.cycles_per_packet
            + self.cycles_per_byte * l2_bytes
            + self.flow_cache_miss_cycles * miss_ratio
        )

    def replica_capacity_pps(
        self, l2_bytes: float, active_flows: float = 1.0, replicas: int = 1
    ) -> float:
        """Packets per second one warm replica forwards (CPU bound, no line rate)."""
        return self.cpu_hz * self.usl_factor(replicas) / self.cycles_for(l2_bytes, active_flows)

    def livelock_fraction(self, rho: float) -> float:
        """Forwarded / offered on a replica at utilisation `rho` (receive livelock)."""
        if rho <= 1.0:
            return 1.0
        kept = max(self.livelock_floor, 1.0 - self.livelock_slope * (rho - 1.0))
        return kept / rho


def vendor_names() -> list[str]:
    """The vendor models shipped as data in ``lab/vendors/*.yaml``."""
    return sorted(p.stem for p in VENDORS_DIR.glob("*.yaml"))


def load_vendor(name: str) -> VendorModel:
    """The vendor model called `name` (see `vendor_names`)."""
    path = VENDORS_DIR / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(vendor_names())
        raise VendorModelError(f"unknown vendor model {name!r}; known: {known}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise VendorModelError(f"lab/vendors/{name}.yaml: not valid YAML: {exc}") from exc
    return vendor_from_mapping(data, f"lab/vendors/{name}.yaml")


def vendor_from_mapping(data: Any, where: str) -> VendorModel:
    """Build a model from a mapping, naming `where` and the field on any problem."""
    if not isinstance(data, dict):
        raise VendorModelError(f"{where}: expected a mapping of parameters")
    known = {f.name: f for f in fields(VendorModel)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise VendorModelError(f"{where}: unknown field {unknown[0]!r}")
    missing = sorted(set(known) - set(data))
    if missing:
        raise VendorModelError(f"{where}: missing field {missing[0]!r}")
    values: dict[str, Any] = {}
    for key, f in known.items():
        value = data[key]
        try:
            if f.type == "str":
                values[key] = str(value)
            elif f.type == "int":
                values[key] = int(value)
            else:
                values[key] = float(value)
        except (TypeError, ValueError) as exc:
            raise VendorModelError(f"{where}: field {key!r}: {exc}") from exc
    try:
        return VendorModel(**values)
    except VendorModelError as exc:
        raise VendorModelError(f"{where}: {exc}") from exc


# --- traffic and outcomes --------------------------------------------------------------


@dataclass(frozen=True)
class Lane:
    """One stream of load from a generator port, through the CNF, to a port.

    `frame_sizes` pairs L2 sizes (bytes, FCS included) with weights (frame counts).
    `flows` distinct flows are hashed across replicas; with `dst_mac` set, the lane is
    addressed to the one replica with that MAC (per-replica steering) instead.
    """

    tx_port: int
    rx_port: int
    rate_pps: float
    frame_sizes: tuple[tuple[int, float], ...]
    flows: int
    dst_mac: str | None = None
    measure_latency: bool = True

    def __post_init__(self) -> None:
        if self.rate_pps < 0 or not math.isfinite(self.rate_pps):
            raise LabError(f"lane rate must be finite and not negative: {self.rate_pps}")
        if self.flows < 1:
            raise LabError(f"lane flows must be at least 1: {self.flows}")
        if not self.frame_sizes or any(s < 1 or w <= 0 for s, w in self.frame_sizes):
            raise LabError(f"lane frame sizes need positive sizes and weights: {self.frame_sizes}")

    @property
    def mean_l2_bytes(self) -> float:
        total = sum(w for _, w in self.frame_sizes)
        return sum(s * w for s, w in self.frame_sizes) / total


@dataclass(frozen=True)
class LatencyOutcome:
    """One-way latency of a lane's forwarded packets, in microseconds."""

    min_us: float
    mean_us: float
    max_us: float
    p50_us: float
    p90_us: float
    p99_us: float
    p999_us: float
    jitter_us: float  # mean absolute difference between consecutive packets
    samples: int
    histogram: HdrHistogram  # lowest 1 us, highest 10 s, 3 significant digits

    def encoded(self) -> str:
        """The HDR histogram in HdrHistogram's compressed base64 form."""
        return str(self.histogram.encode().decode("ascii"))


@dataclass(frozen=True)
class LaneOutcome:
    """What one lane did over one forwarding window."""

    lane: Lane
    offered: int  # frames the generator sent, limited by its port's line rate
    forwarded: int  # frames that reached the receiving port
    forwarded_ratio: float  # forwarded / offered before rounding and loss bursts
    burst_lost: int  # frames lost to loss bursts (included in offered - forwarded)
    latency: LatencyOutcome | None

    @property
    def lost(self) -> int:
        return self.offered - self.forwarded


@dataclass(frozen=True)
class ReplicaCounters:
    """Cumulative interface counters of one replica (both directions summed)."""

    rx_packets: int = 0
    rx_bytes: int = 0
    tx_packets: int = 0
    tx_bytes: int = 0
    drop_packets: int = 0
    drop_bytes: int = 0


@dataclass
class _Replica:
    replica_id: str
    mac: str | None
    model: VendorModel
    ready_s: float
    removed_s: float | None = None
    other_macs: tuple[str, ...] = ()  # the replica's further interfaces (one per port)
    rx_packets: float = 0.0
    rx_bytes: float = 0.0
    tx_packets: float = 0.0
    tx_bytes: float = 0.0

    def hashed_at(self, t_s: float) -> bool:
        """Whether the front still hashes flows to this replica at `t_s`."""
        if t_s < self.ready_s:
            return False
        return self.removed_s is None or t_s < self.removed_s + self.model.rehash_s

    def alive_at(self, t_s: float) -> bool:
        return self.ready_s <= t_s and (self.removed_s is None or t_s < self.removed_s)

    def warm_fraction(self, t_s: float) -> float:
        if self.model.warmup_s <= 0:
            return 1.0
        ramp = min(1.0, max(0.0, (t_s - self.ready_s) / self.model.warmup_s))
        start = self.model.warmup_start_fraction
        return start + (1.0 - start) * ramp


@dataclass
class _SliceResult:
    forwarded_ratio: list[float]  # per lane
    lane_shares: list[dict[int, float]]  # per lane: member index -> share of its flows
    rho: dict[int, float]  # per alive member index
    service_s: dict[int, float]  # per alive member index: seconds per packet
    kept: dict[int, float]  # per member index: forwarded / arrived on that replica


# --- the data plane --------------------------------------------------------------------


class DataPlane:
    """The CNF between the generator's ports.  Thread-safe; deterministic given `seed`.

    Replicas join with `add_replica` (ready at `at_s`, then warming up) and leave with
    `remove_replica`.  `forward` moves traffic through them over a window of virtual
    time and returns per-lane counts and latency; `ground_truth` answers what the true
    NDR or PDR of a point is, without noise or with one trial's noise.
    """

    def __init__(
        self,
        model: VendorModel,
        seed: int,
        port_speeds_bps: Sequence[float] = (25e9, 25e9),
        noise: bool = True,
    ) -> None:
        self.model = model
        self.seed = int(seed)
        self.port_speeds_bps = tuple(float(s) for s in port_speeds_bps)
        self.noise = noise
        self._replicas: list[_Replica] = []
        self._links_up = [True] * len(self.port_speeds_bps)
        self._trials = 0
        self._last_trial = 0
        self._occurrences: dict[str, int] = {}
        self._hash_cache: dict[int, np.ndarray[Any, np.dtype[np.uint64]]] = {}
        self._count_cache: dict[tuple[int, int], list[int]] = {}
        self._burst_times: dict[int, list[float]] = {}
        self._burst_rngs: dict[int, np.random.Generator] = {}
        self._forwarded_until_s = -math.inf  # the end of the latest window forwarded
        self._lock = threading.RLock()

    # --- replicas and links

    def add_replica(
        self,
        replica_id: str,
        at_s: float,
        mac: str | None = None,
        model: VendorModel | None = None,
        other_macs: Sequence[str] = (),
    ) -> None:
        """A replica becomes ready at `at_s` and warms up from there.

        Frames addressed to `mac` or to any of `other_macs` (a CNF with one VF per
        generator port has one MAC per port) reach this replica alone.
        """
        with self._lock:
            if replica_id in self.replica_ids():
                raise LabError(f"replica {replica_id!r} is already in the data plane")
            self._forget_removed(at_s)
            replica = _Replica(replica_id, mac, model or self.model, at_s)
            replica.other_macs = tuple(m.lower() for m in other_macs)
            self._replicas.append(replica)
            log.debug("replica %s ready at %.3f s", replica_id, at_s)

    def _forget_removed(self, now_s: float) -> None:
        """Drop replicas gone and rehashed long ago; no window reaches back that far."""
        self._replicas = [
            r
            for r in self._replicas
            if r.removed_s is None or r.removed_s + r.model.rehash_s > now_s - FORGET_AFTER_S
        ]

    def remove_replica(self, replica_id: str, at_s: float) -> None:
        """The replica stops forwarding at `at_s`; its flows are lost until rehashed.

        A removal reported for a time the data plane has already forwarded past takes
        effect at the end of that window instead: the frames of the past cannot be lost
        any more, and the loss a removal causes must not depend on when it is reported.
        """
        with self._lock:
            at_s = max(at_s, self._forwarded_until_s)
            for replica in self._replicas:
                if replica.replica_id == replica_id and replica.removed_s is None:
                    replica.removed_s = at_s
                    log.debug("replica %s removed at %.3f s", replica_id, at_s)
                    return
            raise LabError(f"replica {replica_id!r} is not in the data plane")

    def replica_ids(self) -> list[str]:
        """Replicas added and not removed, in the order they joined."""
        with self._lock:
            return [r.replica_id for r in self._replicas if r.removed_s is None]

    def replica_macs(self) -> dict[str, str | None]:
        with self._lock:
            return {r.replica_id: r.mac for r in self._replicas if r.removed_s is None}

    def addressed_macs(self) -> set[str]:
        """Every MAC, lower case, that addresses one present replica."""
        with self._lock:
            out: set[str] = set()
            for r in self._replicas:
                if r.removed_s is None:
                    out.update(m.lower() for m in (r.mac, *r.other_macs) if m)
            return out

    def set_replicas(self, count: int, at_s: float, prefix: str = "replica") -> None:
        """Add or remove replicas (the newest first) until `count` are present."""
        with self._lock:
            current = self.replica_ids()
            for replica_id in reversed(current[count:]):
                self.remove_replica(replica_id, at_s)
            index = 0
            while len(self.replica_ids()) < count:
                candidate = f"{prefix}-{index}"
                if candidate not in {r.replica_id for r in self._replicas}:
                    self.add_replica(candidate, at_s, mac=_mac_for(self.seed, candidate))
                index += 1

    def set_link(self, port_id: int, up: bool) -> None:
        """Take a port's link down (nothing leaves or arrives on it) or up again."""
        with self._lock:
            self._links_up[port_id] = up

    def link_up(self, port_id: int) -> bool:
        with self._lock:
            return self._links_up[port_id]

    def replica_counters(self) -> dict[str, ReplicaCounters]:
        """Cumulative counters of every replica still present, for per-pod metrics."""
        with self._lock:
            return {
                r.replica_id: ReplicaCounters(
                    rx_packets=round(r.rx_packets),
                    rx_bytes=round(r.rx_bytes),
                    tx_packets=round(r.tx_packets),
                    tx_bytes=round(r.tx_bytes),
                    drop_packets=round(r.rx_packets) - round(r.tx_packets),
                    drop_bytes=round(r.rx_bytes) - round(r.tx_bytes),
                )
                for r in self._replicas
                if r.removed_s is None
            }

    # --- trials and noise

    def begin_trial(self, content: str | None = None) -> int:
        """A new trial index: the key of one trial's capacity noise and loss bursts.

        With `content` (what the trial sends: ports, rate, duration, frames, flows) the
        index is a hash of the content and of how often that content ran before, so a
        trial's noise does not depend on unrelated trials before it: a lab restarted
        with the same seed gives a resumed sweep the noise an uninterrupted one met.
        Without it, trials are numbered in order.
        """
        with self._lock:
            self._trials += 1
            if content is None:
                self._last_trial = self._trials
            else:
                seen = self._occurrences.get(content, 0) + 1
                self._occurrences[content] = seen
                self._last_trial = _stable_hash(f"{content}#{seen}") >> 1
            return self._last_trial

    @property
    def last_trial(self) -> int:
        with self._lock:
            return self._last_trial

    def trial_noise(self, trial: int) -> float:
        """The capacity factor of `trial` (log-normal, mean one); 1.0 without noise."""
        cv = self.model.capacity_noise_cv
        if not self.noise or cv <= 0:
            return 1.0
        rng = np.random.default_rng([self.seed, trial, 1])
        sigma = math.sqrt(math.log1p(cv * cv))
        return float(math.exp(rng.normal(-0.5 * sigma * sigma, sigma)))

    # --- forwarding

    def forward(
        self,
        lanes: Sequence[Lane],
        start_s: float,
        duration_s: float,
        *,
        trial: int | None = None,
        trial_start_s: float | None = None,
        offered_counts: Sequence[int] | None = None,
    ) -> list[LaneOutcome]:
        """Move `lanes` through the CNF from `start_s` for `duration_s` virtual seconds.

        `trial` keys the capacity noise (a new trial when None).  Loss bursts of a
        trial are a Poisson process in time since `trial_start_s` (default `start_s`),
        so a trial forwarded in successive windows meets the same bursts as one
        forwarded at once.  `offered_counts` gives the exact frames each lane sent in
        the window (a generator counts them itself); by default ``round(rate *
        duration)``.  Updates the replica counters.
        """
        if duration_s < 0:
            raise LabError(f"duration must not be negative: {duration_s}")
        if offered_counts is not None and len(offered_counts) != len(lanes):
            raise LabError("offered_counts must give one count per lane")
        with self._lock:
            if trial is None:
                trial = self.begin_trial()
            origin_s = start_s if trial_start_s is None else trial_start_s
            return self._forward(
                list(lanes),
                start_s,
                duration_s,
                trial=trial,
                origin_s=origin_s,
                offered_counts=offered_counts,
            )

    def _forward(
        self,
        lanes: list[Lane],
        start_s: float,
        duration_s: float,
        *,
        trial: int,
        origin_s: float,
        offered_counts: Sequence[int] | None,
    ) -> list[LaneOutcome]:
        self._forwarded_until_s = max(self._forwarded_until_s, start_s + duration_s)
        rates = self._tx_rates(lanes)
        noise = self.trial_noise(trial)
        offset_us = round((start_s - origin_s) * 1e6)
        rng = np.random.default_rng([self.seed, trial, 2, max(0, offset_us)])
        slices = self._slices(start_s, duration_s)
        fwd_pkts = [0.0] * len(lanes)
        lat_parts: list[list[tuple[float, np.ndarray[Any, np.dtype[np.float64]]]]] = [
            [] for _ in lanes
        ]
        busy = False
        for t0, t1 in slices:
            span = t1 - t0
            members = [r for r in self._replicas if r.hashed_at(0.5 * (t0 + t1))]
            result = self._slice(lanes, rates, members, 0.5 * (t0 + t1), noise)
            busy = busy or any(
                rho >= members[m].model.loss_burst_min_utilisation for m, rho in result.rho.items()
            )
            for i, lane in enumerate(lanes):
                fwd = rates[i] * span * result.forwarded_ratio[i]
                fwd_pkts[i] += fwd
                self._count(lane, rates[i] * span, result, members, i)
                if lane.measure_latency and fwd > 0:
                    draws = self._latency_draws(lane, result, members, i, rng)
                    lat_parts[i].append((fwd, draws))

        bursts = 0
        if busy:
            bursts = self._bursts_in(trial, start_s - origin_s, start_s - origin_s + duration_s)
        outcomes = []
        for i, lane in enumerate(lanes):
            offered = round(rates[i] * duration_s)
            if offered_counts is not None:
                offered = int(offered_counts[i]) if rates[i] > 0 else 0
            ratio = fwd_pkts[i] / (rates[i] * duration_s) if rates[i] * duration_s > 0 else 0.0
            ratio = min(1.0, ratio)
            forwarded = min(offered, round(offered * ratio))
            burst_window_s = min(duration_s, bursts * self.model.loss_burst_duration_s)
            burst_lost = min(forwarded, round(rates[i] * ratio * burst_window_s))
            forwarded -= burst_lost
            latency = None
            if lane.measure_latency and forwarded > 0:
                latency = _latency_outcome(lat_parts[i], forwarded, rng)
            outcomes.append(LaneOutcome(lane, offered, forwarded, ratio, burst_lost, latency))
        if bursts:
            log.debug("trial %d at %.3f s: %d loss bursts", trial, start_s, bursts)
        return outcomes

    def _bursts_in(self, trial: int, from_s: float, to_s: float) -> int:
        """Loss bursts of `trial` starting in [from_s, to_s) of trial time."""
        rate = self.model.loss_burst_rate_per_s
        if not self.noise or rate <= 0 or to_s <= from_s:
            return 0
        times = self._burst_times.get(trial)
        if times is None:
            times = self._burst_times[trial] = []
        rng_state = self._burst_rngs.setdefault(
            trial, np.random.default_rng([self.seed, trial, 3])
        )
        while not times or times[-1] < to_s:
            last = times[-1] if times else 0.0
            times.append(last + float(rng_state.exponential(1.0 / rate)))
        return sum(1 for t in times if from_s <= t < to_s)

    def _tx_rates(self, lanes: Sequence[Lane]) -> list[float]:
        """What each lane really sends: a port's lanes share its line rate."""
        rates = [0.0 if not self._links_up[lane.tx_port] else lane.rate_pps for lane in lanes]
        for port, speed in enumerate(self.port_speeds_bps):
            idx = [i for i, lane in enumerate(lanes) if lane.tx_port == port]
            bits = sum(rates[i] * (lanes[i].mean_l2_bytes + WIRE_OVERHEAD_BYTES) * 8 for i in idx)
            if bits > speed:
                for i in idx:
                    rates[i] *= speed / bits
        return rates

    def _slices(self, start_s: float, duration_s: float) -> list[tuple[float, float]]:
        """Cut the window where replicas join, leave, finish warming or get rehashed."""
        end_s = start_s + duration_s
        cuts = {start_s, end_s}
        for r in self._replicas:
            events = [r.ready_s]
            if r.model.warmup_s > 0:
                step = r.model.warmup_s / _WARMUP_SLICES
                events += [r.ready_s + k * step for k in range(1, _WARMUP_SLICES + 1)]
            if r.removed_s is not None:
                events += [r.removed_s, r.removed_s + r.model.rehash_s]
            cuts.update(t for t in events if start_s < t < end_s)
        ordered = sorted(cuts)
        if duration_s == 0:
            return [(start_s, start_s)]
        return [(a, b) for a, b in itertools.pairwise(ordered) if b > a]

    def _flow_hashes(self, flows: int) -> np.ndarray[Any, np.dtype[np.uint64]]:
        cached = self._hash_cache.get(flows)
        if cached is None:
            rng = np.random.default_rng([self.seed, 0, flows])
            cached = rng.integers(0, 2**63, size=flows, dtype=np.uint64)
            self._hash_cache[flows] = cached
        return cached

    def _shares(self, lane: Lane, members: list[_Replica]) -> tuple[dict[int, float], list[int]]:
        """Share of the lane's flows per member and the flow count per member."""
        if not members:
            return {}, []
        if lane.dst_mac is not None:
            wanted = lane.dst_mac.lower()
            for m, r in enumerate(members):
                if (r.mac is not None and r.mac.lower() == wanted) or wanted in r.other_macs:
                    counts = [0] * len(members)
                    counts[m] = lane.flows
                    return {m: 1.0}, counts
            return {}, [0] * len(members)
        counts = self._hash_counts(lane.flows, len(members))
        return {m: c / lane.flows for m, c in enumerate(counts) if c > 0}, counts

    def _hash_counts(self, flows: int, members: int) -> list[int]:
        """Flows per hash bucket; cached, as a million flows take a while to hash."""
        key = (flows, members)
        counts = self._count_cache.get(key)
        if counts is None:
            hashed = self._flow_hashes(flows) % np.uint64(members)
            counts = np.bincount(hashed.astype(np.int64), minlength=members).tolist()
            self._count_cache[key] = counts
        return list(counts)

    def _slice(
        self,
        lanes: list[Lane],
        rates: list[float],
        members: list[_Replica],
        t_s: float,
        noise: float,
    ) -> _SliceResult:
        """Steady state at `t_s`: per-lane forwarded ratio and per-replica utilisation."""
        alive = sum(1 for r in members if r.alive_at(t_s))
        shares: list[dict[int, float]] = []
        sessions = [0] * len(members)
        for lane in lanes:
            share, counts = self._shares(lane, members)
            shares.append(share)
            # Symmetric hashing: flow i of every lane is the same session.
            sessions = [max(s, c) for s, c in zip(sessions, counts, strict=False)]

        rho: dict[int, float] = {}
        service: dict[int, float] = {}
        kept: dict[int, float] = {}
        for m, r in enumerate(members):
            if not r.alive_at(t_s):
                kept[m] = 0.0
                continue
            cycles_available = (
                r.model.cpu_hz * r.model.usl_factor(alive) * r.warm_fraction(t_s) * noise
            )
            demand = 0.0
            pkts = 0.0
            for i, lane in enumerate(lanes):
                pps = rates[i] * shares[i].get(m, 0.0)
                demand += pps * r.model.cycles_for(lane.mean_l2_bytes, sessions[m])
                pkts += pps
            rho[m] = demand / cycles_available
            mean_cycles = demand / pkts if pkts > 0 else r.model.cycles_for(64, sessions[m])
            service[m] = mean_cycles / cycles_available
            admitted = 1.0
            table = r.model.session_table_entries
            if table > 0 and sessions[m] > table:
                admitted = table / sessions[m]
            kept[m] = admitted * r.model.livelock_fraction(rho[m])

        ratios = []
        for i in range(len(lanes)):
            ratios.append(sum(share * kept[m] for m, share in shares[i].items()))
        ratios = self._rx_line_limit(lanes, rates, ratios)
        return _SliceResult(ratios, shares, rho, service, kept)

    def _rx_line_limit(
        self, lanes: list[Lane], rates: list[float], ratios: list[float]
    ) -> list[float]:
        out = list(ratios)
        for port, speed in enumerate(self.port_speeds_bps):
            idx = [i for i, lane in enumerate(lanes) if lane.rx_port == port]
            if not self._links_up[port]:
                for i in idx:
                    out[i] = 0.0
                continue
            bits = sum(
                rates[i] * out[i] * (lanes[i].mean_l2_bytes + WIRE_OVERHEAD_BYTES) * 8 for i in idx
            )
            if bits > speed:
                for i in idx:
                    out[i] *= speed / bits
        return out

    def _count(
        self,
        lane: Lane,
        sent: float,
        result: _SliceResult,
        members: list[_Replica],
        i: int,
    ) -> None:
        size = lane.mean_l2_bytes
        for m, share in result.lane_shares[i].items():
            replica = members[m]
            if m not in result.rho:
                continue  # gone: its packets vanish before any counter sees them
            arrived = sent * share
            replica.rx_packets += arrived
            replica.rx_bytes += arrived * size
            out = arrived * result.kept[m]
            replica.tx_packets += out
            replica.tx_bytes += out * size

    def _latency_draws(
        self,
        lane: Lane,
        result: _SliceResult,
        members: list[_Replica],
        i: int,
        rng: np.random.Generator,
    ) -> np.ndarray[Any, np.dtype[np.float64]]:
        """Latency samples (us) of the lane in one slice, mixed over its replicas."""
        parts = []
        wire_us = (lane.mean_l2_bytes + WIRE_OVERHEAD_BYTES) * 8 / self.port_speeds_bps[0] * 1e6
        for m, share in result.lane_shares[i].items():
            if m not in result.rho:
                continue
            n = max(1, round(_LATENCY_DRAWS * share))
            model = members[m].model
            rho = result.rho[m]
            service_s = result.service_s[m]
            cap_s = model.queue_buffer_packets * service_s
            jitter = rng.exponential(model.latency_jitter_us, n) if model.latency_jitter_us else 0
            if rho < 1.0:
                # M/D/1 mean wait (Pollaczek-Khinchine) in units of one batch's service.
                batch_s = model.batch_packets * service_s
                mean_wait_s = rho * batch_s / (2.0 * (1.0 - rho))
                wait_s = np.minimum(rng.exponential(mean_wait_s, n), cap_s)
            else:
                # Saturated: the buffer is full and every packet waits for nearly all of it.
                wait_s = cap_s * (1.0 - 0.05 * rng.random(n))
            parts.append(model.base_latency_us + wire_us + jitter + wait_s * 1e6)
        if not parts:
            return np.zeros(0)
        return np.concatenate(parts)

    # --- ground truth

    def ground_truth(
        self,
        frame_sizes: Sequence[tuple[int, float]] | int,
        flows: int,
        replicas: int | None,
        bidirectional: bool,
        *,
        loss_ratio: float = 0.0,
        noise: bool = False,
        trial: int | None = None,
        steering: str = "shared-front",
    ) -> float:
        """The true throughput of a point: the largest aggregate load (pps, over both
        directions when bidirectional, split evenly) whose loss ratio stays at or below
        `loss_ratio` (0 gives the NDR, 0.005 the PDR) with `replicas` warm replicas of
        this data plane's model; with ``replicas=None``, with the replicas present now,
        each with its own model and MAC, as if warm.  With `noise`, capacity carries
        the noise of `trial` (the latest trial when None); loss bursts are left out, as
        they are rare events and not a property of the load.  With
        ``steering="per-replica"`` each replica gets its own lane per direction carrying
        an equal share of the load and flows.
        """
        sizes = ((frame_sizes, 1.0),) if isinstance(frame_sizes, int) else tuple(frame_sizes)
        with self._lock:
            factor = (
                self.trial_noise(self._last_trial if trial is None else trial) if noise else 1.0
            )
            if replicas is None:
                live = [r for r in self._replicas if r.removed_s is None]
                members = [_Replica(r.replica_id, r.mac, r.model, -1e9) for r in live]
            else:
                members = [
                    _Replica(f"truth-{k}", f"02:00:00:00:ff:{k:02x}", self.model, -1e9)
                    for k in range(replicas)
                ]
            links = self._links_up
            self._links_up = [True] * len(self.port_speeds_bps)
            try:
                return self._search_load(
                    sizes,
                    flows,
                    members,
                    bidirectional,
                    loss_ratio=loss_ratio,
                    noise=factor,
                    steering=steering,
                )
            finally:
                self._links_up = links

    def _search_load(
        self,
        sizes: tuple[tuple[int, float], ...],
        flows: int,
        members: list[_Replica],
        bidirectional: bool,
        *,
        loss_ratio: float,
        noise: float,
        steering: str,
    ) -> float:
        directions = ((0, 1), (1, 0)) if bidirectional else ((0, 1),)

        def lanes_at(load_pps: float) -> list[Lane]:
            per_dir = load_pps / len(directions)
            if steering == "shared-front":
                return [
                    Lane(a, b, per_dir, sizes, flows, measure_latency=False) for a, b in directions
                ]
            each = max(1, flows // max(1, len(members)))
            return [
                Lane(a, b, per_dir / len(members), sizes, each, r.mac, measure_latency=False)
                for a, b in directions
                for r in members
            ]

        def loss(load_pps: float) -> float:
            lanes = lanes_at(load_pps)
            rates = self._tx_rates(lanes)
            result = self._slice(lanes, rates, members, 0.0, noise)
            sent = sum(rates)
            got = sum(r * f for r, f in zip(rates, result.forwarded_ratio, strict=True))
            return 1.0 - got / sent if sent > 0 else 1.0

        if not members:
            return 0.0
        mean_bytes = sum(s * w for s, w in sizes) / sum(w for _, w in sizes)
        line_pps = min(self.port_speeds_bps) / ((mean_bytes + WIRE_OVERHEAD_BYTES) * 8)
        high = line_pps * len(directions)
        tolerance = 1e-9
        if loss(high) <= loss_ratio + tolerance:
            return high
        low = 0.0
        if loss(high * 1e-6) > loss_ratio + tolerance:
            return 0.0
        for _ in range(60):
            mid = 0.5 * (low + high)
            if loss(mid) <= loss_ratio + tolerance:
                low = mid
            else:
                high = mid
        return low


def _latency_outcome(
    parts: list[tuple[float, np.ndarray[Any, np.dtype[np.float64]]]],
    samples: int,
    rng: np.random.Generator,
) -> LatencyOutcome:
    """Spread `samples` packets over the slices' latency distributions (by weight)."""
    weights = np.array([w for w, _ in parts], dtype=np.float64)
    per_slice = rng.multinomial(samples, weights / weights.sum())
    values: list[np.ndarray[Any, np.dtype[np.int64]]] = []
    counts: list[np.ndarray[Any, np.dtype[np.int64]]] = []
    for n, (_, draws) in zip(per_slice, parts, strict=True):
        if n == 0 or draws.size == 0:
            continue
        grid, hits = np.unique(np.maximum(1, np.rint(draws)).astype(np.int64), return_counts=True)
        values.append(grid)
        counts.append(rng.multinomial(int(n), hits / hits.sum()))
    value_arr = np.concatenate(values)
    count_arr = np.concatenate(counts)
    histogram = HdrHistogram(HDR_LOWEST_US, HDR_HIGHEST_US, HDR_SIGNIFICANT_DIGITS)
    for value, count in zip(value_arr.tolist(), count_arr.tolist(), strict=True):
        if count:
            histogram.record_value(min(value, HDR_HIGHEST_US), count)
    present = count_arr > 0
    mean = float(np.average(value_arr, weights=count_arr))
    spread = float(np.sqrt(np.average((value_arr - mean) ** 2, weights=count_arr)))
    pct = histogram.get_percentile_to_value_dict([50.0, 90.0, 99.0, 99.9])
    return LatencyOutcome(
        min_us=float(value_arr[present].min()),
        mean_us=mean,
        max_us=float(value_arr[present].max()),
        p50_us=float(pct[50.0]),
        p90_us=float(pct[90.0]),
        p99_us=float(pct[99.0]),
        p999_us=float(pct[99.9]),
        # Consecutive packets are independent draws: E|X - Y| = 2 sigma / sqrt(pi)
        # for a normal approximation of the spread.
        jitter_us=2.0 * spread / math.sqrt(math.pi),
        samples=int(count_arr.sum()),
        histogram=histogram,
    )


def _mac_for(seed: int, replica_id: str) -> str:
    """A stable, locally administered MAC for a replica."""
    digest = _stable_hash(f"{seed}:{replica_id}")
    octets = [0x02] + [(digest >> (8 * k)) & 0xFF for k in range(5)]
    return ":".join(f"{o:02x}" for o in octets)


def _stable_hash(text: str) -> int:
    value = 1469598103934665603  # FNV-1a 64-bit offset basis
    for byte in text.encode("utf-8"):
        value = ((value ^ byte) * 1099511628211) % 2**64
    return value


def mac_for(seed: int, replica_id: str) -> str:
    """The MAC `set_replicas` gives a replica; other servers reuse it for their pods."""
    return _mac_for(seed, replica_id)
