"""The generator side of the emulated TRex: ports, streams, runs and counters.

The engine turns started streams into lanes of the data-plane model and advances them
window by window in virtual time.  Each window is homogeneous (no stream starts or
stops inside it) and at most `window_s` long, aligned to the start of the trial, so
the counters a client reads are the sums of whole windows: what the generator sent
(``rate x elapsed``, counted exactly) and what came back through the model.

Windows are cut at the trial's grid, so the same seed, trials and replica events give
the same counts however often the counters are read.

Counters read while traffic runs leave out the frames still in flight (rate times the
model's base latency), as a real TRex shows them: that phantom loss is gone once the
traffic has stopped.

Caveats: counters move a whole window at a time; a multi-burst stream is modelled at
its average rate over bursts and gaps; a chain of streams that loops back is followed
once.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hdrh.histogram import HdrHistogram

from lab.dataplane import (
    HDR_HIGHEST_US,
    HDR_LOWEST_US,
    HDR_SIGNIFICANT_DIGITS,
    DataPlane,
    Lane,
)
from lab.trex.streams import Stream

log = logging.getLogger(__name__)

EVENT_PORT_STARTED = 0
EVENT_PORT_STOPPED = 1
EVENT_PORT_PAUSED = 2
EVENT_PORT_RESUMED = 3
EVENT_PORT_JOB_DONE = 4
EVENT_PORT_ACQUIRED = 5
EVENT_PORT_RELEASED = 6
EVENT_PORT_ERROR = 7
EVENT_PORT_ATTR_CHG = 8
EVENT_PROFILE_STARTED = 10
EVENT_PROFILE_STOPPED = 11
EVENT_PROFILE_PAUSED = 12
EVENT_PROFILE_RESUMED = 13
EVENT_PROFILE_FINISHED_TX = 14
EVENT_SERVER_STOPPED = 100
DEFAULT_PROFILE = "_"
ALL_PROFILES = "*"
_PROFILE_EVENTS = {
    EVENT_PORT_STARTED: EVENT_PROFILE_STARTED,
    EVENT_PORT_STOPPED: EVENT_PROFILE_STOPPED,
    EVENT_PORT_PAUSED: EVENT_PROFILE_PAUSED,
    EVENT_PORT_RESUMED: EVENT_PROFILE_RESUMED,
    EVENT_PORT_JOB_DONE: EVENT_PROFILE_FINISHED_TX,
}

EventSink = Callable[[int, dict[str, Any]], None]


class EngineError(Exception):
    """A request the engine refuses; the text is what a TRex client shows."""


@dataclass
class PgStats:
    """Counters of one packet group id (pg_id), per port."""

    pg_id: int
    latency: bool
    ver_id: int
    ports: int
    tx_pkts: list[int] = field(default_factory=list)
    tx_bytes: list[int] = field(default_factory=list)
    rx_pkts: list[int] = field(default_factory=list)
    rx_bytes: list[int] = field(default_factory=list)
    tx_pps: list[float] = field(default_factory=list)
    rx_pps: list[float] = field(default_factory=list)
    tx_bps: list[float] = field(default_factory=list)
    rx_bps: list[float] = field(default_factory=list)
    hdr: HdrHistogram | None = None
    lat_min_us: float = math.inf
    lat_max_us: float = 0.0
    lat_sum_us: float = 0.0
    lat_samples: int = 0
    last_max_us: float = 0.0
    jitter_us: float = 0.0
    dropped: int = 0

    def __post_init__(self) -> None:
        for name in ("tx_pkts", "tx_bytes", "rx_pkts", "rx_bytes"):
            setattr(self, name, [0] * self.ports)
        for name in ("tx_pps", "rx_pps", "tx_bps", "rx_bps"):
            setattr(self, name, [0.0] * self.ports)
        if self.latency:
            self.hdr = HdrHistogram(HDR_LOWEST_US, HDR_HIGHEST_US, HDR_SIGNIFICANT_DIGITS)


@dataclass
class PortState:
    port_id: int
    speed_bps: float
    mac: str
    peer_mac: str
    owner: str = ""
    session_id: int | None = None
    handler: str | None = None
    streams: dict[int, Stream] = field(default_factory=dict)
    profiles: dict[int, str] = field(default_factory=dict)  # stream id -> profile id
    service: bool = False
    promiscuous: bool = False
    multicast: bool = False
    link_up: bool = True
    dst_mac: str = ""
    opackets: int = 0
    obytes: int = 0
    ipackets: int = 0
    ibytes: int = 0
    tx_pps: float = 0.0
    rx_pps: float = 0.0
    tx_bps: float = 0.0
    rx_bps: float = 0.0
    run: Run | None = None

    @property
    def state(self) -> str:
        if self.run is not None:
            return "PAUSE" if self.run.paused_at_s is not None else "TX"
        return "STREAMS" if self.streams else "IDLE"

    def profile_states(self) -> dict[str, str]:
        """State per profile (dynamic profiles of STL API 5): only profiles with streams."""
        states = {}
        for profile in sorted(set(self.profiles.values())):
            running = self.run is not None and self.run.profile_id in (profile, ALL_PROFILES)
            states[profile] = self.state if running else "STREAMS"
        return states

    def stream_ids(self, profile: str) -> list[int]:
        return [i for i, p in self.profiles.items() if profile in (ALL_PROFILES, p)]


@dataclass
class Active:
    """A stream while its port transmits: rate and exact frame count over time."""

    stream: Stream
    port_id: int
    pps: float
    start_s: float
    end_s: float | None  # None: until the run stops
    seg_start_s: float = 0.0
    sent_base: int = 0
    planned: int | None = None

    def sent_at(self, t_s: float) -> int:
        """Frames sent by lab time `t_s` (rounded, so a whole trial sends rate x duration)."""
        if t_s <= self.seg_start_s:
            return self.sent_base
        if self.end_s is not None:
            t_s = min(t_s, self.end_s)
        sent = self.sent_base + math.floor(self.pps * (t_s - self.seg_start_s) + 0.5)
        return min(sent, self.planned) if self.planned is not None else sent

    def running_in(self, t0_s: float, t1_s: float) -> bool:
        return self.start_s <= t0_s and (self.end_s is None or self.end_s >= t1_s)


@dataclass
class Run:
    port_id: int
    started_s: float
    end_s: float | None
    factor: float
    actives: list[Active]
    profile_id: str = DEFAULT_PROFILE
    paused_at_s: float | None = None


class Engine:
    """Ports, streams and traffic of the emulated generator, over a `DataPlane`."""

    def __init__(
        self,
        dataplane: DataPlane,
        port_macs: list[str],
        window_s: float = 1.0,
        *,
        events: EventSink | None = None,
        join_s: float = 0.0,
        in_flight_s: float = 0.0,
    ) -> None:
        self.dataplane = dataplane
        self.window_s = window_s
        self.join_s = join_s
        self.in_flight_s = in_flight_s
        self._events = events or (lambda _kind, _data: None)
        speeds = dataplane.port_speeds_bps
        self.ports = [
            PortState(p, speeds[p], port_macs[p], port_macs[p ^ 1] if p ^ 1 < len(speeds) else "")
            for p in range(len(speeds))
        ]
        for port in self.ports:
            port.dst_mac = port.peer_mac
        self.pgs: dict[int, PgStats] = {}
        self._pg_versions: dict[int, int] = {}
        self.advanced_s = 0.0
        self.trial: int | None = None
        self.trial_start_s = 0.0
        self.trials_run = 0
        self.windows = 0
        self._advancing = False
        # an open start: (its instant, lab time until which idle ports may still join it)
        self._join: tuple[float, float] | None = None

    # --- streams

    def add_stream(self, port_id: int, stream: Stream, profile: str = DEFAULT_PROFILE) -> None:
        port = self.ports[port_id]
        if stream.stream_id in port.streams:
            raise EngineError(f"stream {stream.stream_id} already exists")
        if stream.pg_id is not None:
            self._claim_pg(stream, port_id)
        port.streams[stream.stream_id] = stream
        port.profiles[stream.stream_id] = profile

    def _claim_pg(self, stream: Stream, port_id: int) -> None:
        assert stream.pg_id is not None
        for other in self.ports:
            for existing in other.streams.values():
                if existing.pg_id == stream.pg_id:
                    raise EngineError(
                        f"pg_id {stream.pg_id} is already used by stream "
                        f"{existing.stream_id} on port {other.port_id}"
                    )
        version = self._pg_versions.get(stream.pg_id, 0) + 1
        self._pg_versions[stream.pg_id] = version
        self.pgs[stream.pg_id] = PgStats(stream.pg_id, stream.latency, version, len(self.ports))

    def remove_stream(self, port_id: int, stream_id: int) -> None:
        port = self.ports[port_id]
        if stream_id not in port.streams:
            raise EngineError(f"stream {stream_id} does not exist")
        stream = port.streams.pop(stream_id)
        port.profiles.pop(stream_id, None)
        if stream.pg_id is not None:
            self.pgs.pop(stream.pg_id, None)

    def remove_all_streams(self, port_id: int, profile: str = ALL_PROFILES) -> None:
        for stream_id in self.ports[port_id].stream_ids(profile):
            self.remove_stream(port_id, stream_id)

    def active_pgids(self) -> dict[str, list[int]]:
        latency = sorted(pg for pg, s in self.pgs.items() if s.latency)
        flow = sorted(pg for pg, s in self.pgs.items() if not s.latency)
        return {"latency": latency, "flow_stats": flow}

    # --- traffic

    def start(
        self,
        port_id: int,
        now_s: float,
        mul: dict[str, Any],
        duration_s: float,
        *,
        force: bool = False,
        profile: str = DEFAULT_PROFILE,
    ) -> None:
        port = self.ports[port_id]
        if port.run is not None:
            raise EngineError("port is active - please stop the port before starting traffic")
        if not port.link_up:
            raise EngineError("link is down - cannot start traffic")
        ids = port.stream_ids(profile)
        streams = [port.streams[i] for i in ids if port.streams[i].enabled]
        if not streams:
            raise EngineError("unable to start traffic - no streams attached to port")
        self.advance(now_s)
        factor = self._factor(port, streams, mul, force)
        start_s = self._join[0] if self._join is not None else now_s
        end_s = start_s + duration_s if duration_s > 0 else None
        actives = self._schedule(port, streams, factor, start_s, end_s)
        if self.trial is None:
            content = ";".join(
                f"{port_id}:{a.stream.l2_bytes}:{a.pps:.6g}:{a.stream.flows}" for a in actives
            )
            replicas = len(self.dataplane.replica_ids())
            self.trial = self.dataplane.begin_trial(f"{content}|{duration_s:g}|r{replicas}")
            self.trial_start_s = start_s
            self.trials_run += 1
        port.run = Run(port_id, start_s, end_s, factor, actives, profile)
        if self._join is None and self.join_s > 0 and self._joiners(port):
            self._join = (start_s, now_s + self.join_s)
        elif self._join is not None and not self._joiners(port):
            self._join = None
        self._port_event(port, EVENT_PORT_STARTED)
        log.debug("port %d starts at %.3f s, factor %.6g, end %s", port_id, start_s, factor, end_s)

    def _joiners(self, started: PortState) -> list[PortState]:
        """Idle ports of the same owner with streams to send: they may join `started`'s start.

        Clients start ports one RPC at a time.  On real TRex those RPCs are
        microseconds apart; in lab time, scaled up, they would be seconds apart and one
        direction would run alone at each end of a trial.  So while such a port is still
        idle, a start stays open for `join_s`: time is not forwarded past its instant, and
        a port started meanwhile begins at that same instant.  The start closes as soon as
        the last such port joins, so a complete start costs no waiting.
        """
        return [
            p
            for p in self.ports
            if p.run is None
            and p is not started
            and p.owner == started.owner
            and p.link_up
            and any(s.enabled for s in p.streams.values())
        ]

    def next_event_s(self) -> float | None:
        """The lab instant of the next thing that happens without a request: a run's end
        or an open start closing (None when nothing is scheduled)."""
        if self._join is not None:
            return self._join[1]  # time stands still at the start until then
        instants = [
            p.run.end_s
            for p in self.ports
            if p.run and p.run.end_s is not None and p.run.paused_at_s is None
        ]
        return min(instants) if instants else None

    def _factor(
        self, port: PortState, streams: list[Stream], mul: dict[str, Any], force: bool
    ) -> float:
        """The multiplier as a factor on the streams' base rates (latency streams excluded)."""
        kind = mul.get("type", "raw")
        value = float(mul.get("value", 1.0))
        if not value > 0:
            raise EngineError(f"multiplier value must be positive, got {value}")
        loads = [s for s in streams if not s.latency] or streams
        base_pps = sum(s.base_pps(port.speed_bps) for s in loads)
        base_l2 = sum(s.base_pps(port.speed_bps) * s.l2_bytes * 8 for s in loads)
        base_l1 = sum(s.base_pps(port.speed_bps) * s.wire_bytes * 8 for s in loads)
        if kind == "raw":
            factor = value
        elif kind == "pps":
            factor = value / base_pps
        elif kind == "bps":
            factor = value / base_l2
        elif kind == "bpsl1":
            factor = value / base_l1
        elif kind == "percentage":
            factor = value / 100.0 * port.speed_bps / base_l1
        else:
            raise EngineError(f"unknown multiplier type '{kind}'")
        return self._within_line_rate(port, streams, factor, force)

    def _within_line_rate(
        self, port: PortState, streams: list[Stream], factor: float, force: bool
    ) -> float:
        """`factor`, or an error when the port cannot send that much (with `force`: the
        largest factor that fits the line rate, as TRex sends at line rate then)."""
        loads = [s for s in streams if not s.latency] or streams
        base_l1 = sum(s.base_pps(port.speed_bps) * s.wire_bytes * 8 for s in loads)
        fixed_l1 = sum(s.base_pps(port.speed_bps) * s.wire_bytes * 8 for s in streams if s.latency)
        if loads[0].latency:
            fixed_l1 = 0.0
        total_l1 = base_l1 * factor + fixed_l1
        if total_l1 > port.speed_bps * (1 + 1e-9):
            if not force:
                raise EngineError(
                    f"expected L1 B/W: {total_l1:.6g} bps exceeds port line rate: "
                    f"{port.speed_bps:.6g} bps"
                )
            factor = max(0.0, port.speed_bps - fixed_l1) / base_l1
        return factor

    def _schedule(
        self,
        port: PortState,
        streams: list[Stream],
        factor: float,
        now_s: float,
        end_s: float | None,
    ) -> list[Active]:
        """Start self-starting streams after their ISG; chained streams after their
        predecessor ends.  A chain that loops back is followed once."""
        by_id = {s.stream_id: s for s in streams}
        actives: list[Active] = []
        seen: set[int] = set()
        for first in streams:
            if not first.self_start:
                continue
            stream: Stream | None = first
            at_s = now_s
            while stream is not None and stream.stream_id not in seen:
                seen.add(stream.stream_id)
                pps = stream.base_pps(port.speed_bps) * (1.0 if stream.latency else factor)
                start_s = at_s + stream.isg_us * 1e-6
                planned = stream.planned_pkts
                busy_s = stream.active_s(pps)
                if planned is not None and busy_s is not None:
                    pps = planned / busy_s if busy_s > 0 else pps  # average over gaps
                stop_s = start_s + busy_s if busy_s is not None else None
                if end_s is not None:
                    stop_s = end_s if stop_s is None else min(stop_s, end_s)
                actives.append(
                    Active(stream, port.port_id, pps, start_s, stop_s, start_s, 0, planned)
                )
                if stop_s is None or stream.next_stream_id < 0:
                    break
                at_s = stop_s
                stream = by_id.get(stream.next_stream_id)
        return actives

    def stop(self, port_id: int, now_s: float, profile: str = ALL_PROFILES) -> None:
        port = self.ports[port_id]
        if port.run is None or profile not in (ALL_PROFILES, port.run.profile_id):
            return
        self.advance(now_s, flush=True)
        self._finish(port, now_s, EVENT_PORT_STOPPED)

    def pause(self, port_id: int, now_s: float) -> None:
        port = self.ports[port_id]
        if port.run is None or port.run.paused_at_s is not None:
            raise EngineError("port is not transmitting")
        self.advance(now_s, flush=True)
        port.run.paused_at_s = now_s
        for active in port.run.actives:
            self._resegment(active, now_s, active.pps)
        self._port_event(port, EVENT_PORT_PAUSED)

    def resume(self, port_id: int, now_s: float) -> None:
        port = self.ports[port_id]
        if port.run is None or port.run.paused_at_s is None:
            raise EngineError("port is not in pause mode")
        self.advance(now_s)
        paused_at_s = port.run.paused_at_s
        gap_s = now_s - paused_at_s
        port.run.paused_at_s = None
        if port.run.end_s is not None:
            port.run.end_s += gap_s
        for active in port.run.actives:
            if active.start_s > paused_at_s:
                active.start_s += gap_s
            active.seg_start_s = max(active.start_s, now_s)
            if active.end_s is not None:
                active.end_s += gap_s
        self._port_event(port, EVENT_PORT_RESUMED)

    def update(self, port_id: int, now_s: float, mul: dict[str, Any], force: bool) -> None:
        port = self.ports[port_id]
        if port.run is None:
            raise EngineError("port is not transmitting")
        self.advance(now_s, flush=True)
        streams = [a.stream for a in port.run.actives]
        op = mul.get("op", "abs")
        wanted = self._factor(port, streams, mul, force=True)
        if op == "add":
            wanted = port.run.factor + wanted
        elif op == "sub":
            wanted = max(0.0, port.run.factor - wanted)
        wanted = self._within_line_rate(port, streams, wanted, force)
        ratio = wanted / port.run.factor if port.run.factor > 0 else 0.0
        port.run.factor = wanted
        for active in port.run.actives:
            if not active.stream.latency:
                self._resegment(active, now_s, active.pps * ratio)

    @staticmethod
    def _resegment(active: Active, now_s: float, pps: float) -> None:
        """Keep the frames sent so far and continue at `pps` from `now_s`."""
        sent = active.sent_at(now_s)
        if active.planned is not None and active.end_s is not None and pps > 0:
            active.end_s = now_s + (active.planned - sent) / pps
        active.sent_base = sent
        active.seg_start_s = max(now_s, active.start_s)
        active.pps = pps

    def _finish(self, port: PortState, at_s: float, event: int) -> None:
        # The run ends before its event goes out: the stats sent with the event are final.
        assert port.run is not None
        profile = port.run.profile_id
        port.run = None
        port.tx_pps = port.tx_bps = 0.0
        peer = self.ports[port.port_id ^ 1] if port.port_id ^ 1 < len(self.ports) else port
        peer.rx_pps = peer.rx_bps = 0.0
        for pg in self.pgs.values():
            pg.tx_pps[port.port_id] = pg.tx_bps[port.port_id] = 0.0
            pg.rx_pps[peer.port_id] = pg.rx_bps[peer.port_id] = 0.0
        if all(p.run is None for p in self.ports):
            self.trial = None
        self._port_event(port, event, profile)

    def _port_event(self, port: PortState, event: int, profile: str | None = None) -> None:
        """The profile's event (STL API 5 clients) and then the port's (both generations)."""
        if profile is None:
            assert port.run is not None
            profile = port.run.profile_id
        self._events(_PROFILE_EVENTS[event], {"port_id": port.port_id, "profile_id": profile})
        self._events(event, {"port_id": port.port_id})

    def set_link(self, port_id: int, up: bool, now_s: float) -> None:
        self.advance(now_s, flush=True)
        self.ports[port_id].link_up = up
        self.dataplane.set_link(port_id, up)

    def reset(self, now_s: float) -> None:
        """Forget every owner, stream and run (a server restart)."""
        self.advance(now_s, flush=True)
        for port in self.ports:
            port.run = None
            port.streams.clear()
            port.profiles.clear()
            port.owner, port.session_id, port.handler = "", None, None
            port.tx_pps = port.tx_bps = port.rx_pps = port.rx_bps = 0.0
        self.pgs.clear()
        self.trial = None

    # --- advancing time

    def advance(self, now_s: float, flush: bool = False) -> None:
        """Forward running streams window by window up to lab time `now_s`.

        Only whole windows of the trial's grid are forwarded (the counters lag by less
        than a window, as TRex's own counters lag their sampling), so the counts do not
        depend on when anyone reads them.  With `flush`, the last partial window up to
        `now_s` is forwarded too: a stop, pause, rate change or link change happens then.
        """
        if self._advancing:
            return  # an event raised while advancing reads counters; no nested windows
        if self._join is not None:
            if flush or now_s >= self._join[1]:
                self._join = None  # a stop or change, or nobody joined in time
            else:
                now_s = min(now_s, self._join[0])
        self._advancing = True
        try:
            self._advance(now_s, flush)
        finally:
            self._advancing = False

    def _advance(self, now_s: float, flush: bool) -> None:
        t_s = self.advanced_s
        while True:
            runs = [p.run for p in self.ports if p.run is not None]
            if not runs:
                t_s = max(t_s, now_s)
                break
            t1_s = self._next_cut(t_s, runs)
            if t1_s > now_s + 1e-12:
                if not flush or now_s <= t_s + 1e-12:
                    break
                t1_s = now_s
            self._window(t_s, t1_s)
            t_s = t1_s
            self._end_runs(t_s)
        self.advanced_s = max(self.advanced_s, t_s)

    def _next_cut(self, t_s: float, runs: list[Run]) -> float:
        grid = self.trial_start_s + self.window_s * (
            math.floor((t_s - self.trial_start_s) / self.window_s + 1e-9) + 1
        )
        cuts = [grid]
        for run in runs:
            if run.end_s is not None:
                cuts.append(run.end_s)
            for active in run.actives:
                cuts.append(active.start_s)
                if active.end_s is not None:
                    cuts.append(active.end_s)
        return min(c for c in cuts if c > t_s + 1e-12)

    def _end_runs(self, t_s: float) -> None:
        for port in self.ports:
            run = port.run
            if run is None or run.paused_at_s is not None:
                continue
            done_streams = all(a.end_s is not None and a.end_s <= t_s + 1e-12 for a in run.actives)
            if (run.end_s is not None and run.end_s <= t_s + 1e-12) or done_streams:
                self._finish(port, t_s, EVENT_PORT_JOB_DONE)

    def _window(self, t0_s: float, t1_s: float) -> None:
        span_s = t1_s - t0_s
        actives = [
            a
            for p in self.ports
            if p.run is not None and p.run.paused_at_s is None
            for a in p.run.actives
            if a.running_in(t0_s, t1_s)
        ]
        for port in self.ports:
            port.tx_pps = port.tx_bps = port.rx_pps = port.rx_bps = 0.0
        if not actives or span_s <= 0:
            return
        macs = self.dataplane.addressed_macs()
        lanes = [
            Lane(
                tx_port=a.port_id,
                rx_port=a.port_id ^ 1,
                rate_pps=a.pps,
                frame_sizes=((a.stream.l2_bytes, 1.0),),
                flows=a.stream.flows,
                dst_mac=a.stream.dst_mac if a.stream.dst_mac.lower() in macs else None,
                measure_latency=a.stream.latency,
            )
            for a in actives
        ]
        offered = [a.sent_at(t1_s) - a.sent_at(t0_s) for a in actives]
        assert self.trial is not None
        outcomes = self.dataplane.forward(
            lanes,
            t0_s,
            span_s,
            trial=self.trial,
            trial_start_s=self.trial_start_s,
            offered_counts=offered,
        )
        self.windows += 1
        for active, sent, outcome in zip(actives, offered, outcomes, strict=True):
            self._count(active, sent, outcome.forwarded, span_s)
            pg = self.pgs.get(active.stream.pg_id) if active.stream.pg_id is not None else None
            if pg is not None and pg.latency:
                pg.dropped += sent - outcome.forwarded
                if outcome.latency is not None:
                    lat = outcome.latency
                    assert pg.hdr is not None
                    pg.hdr.add(lat.histogram)
                    pg.lat_min_us = min(pg.lat_min_us, lat.min_us)
                    pg.lat_max_us = max(pg.lat_max_us, lat.max_us)
                    pg.lat_sum_us += lat.mean_us * lat.samples
                    pg.lat_samples += lat.samples
                    pg.last_max_us = lat.max_us
                    pg.jitter_us = lat.jitter_us

    def _count(self, active: Active, sent: int, received: int, span_s: float) -> None:
        size = active.stream.l2_bytes
        tx = self.ports[active.port_id]
        rx = self.ports[active.port_id ^ 1]
        tx.opackets += sent
        tx.obytes += sent * size
        tx.tx_pps += sent / span_s
        tx.tx_bps += sent * size * 8 / span_s
        rx.ipackets += received
        rx.ibytes += received * size
        rx.rx_pps += received / span_s
        rx.rx_bps += received * size * 8 / span_s
        if active.stream.pg_id is None:
            return
        pg = self.pgs.get(active.stream.pg_id)
        if pg is None:
            return
        pg.tx_pkts[tx.port_id] += sent
        pg.tx_bytes[tx.port_id] += sent * size
        pg.rx_pkts[rx.port_id] += received
        pg.rx_bytes[rx.port_id] += received * size
        pg.tx_pps[tx.port_id] = sent / span_s
        pg.tx_bps[tx.port_id] = sent * size * 8 / span_s
        pg.rx_pps[rx.port_id] = received / span_s
        pg.rx_bps[rx.port_id] = received * size * 8 / span_s

    # --- views

    def in_flight(self, rx_port: int, rx_pps: float) -> int:
        """Frames on their way to `rx_port` at this instant: sent, not yet received.

        While the far port transmits, ``rx_pps x in_flight_s`` frames are in the CNF and
        on the wire, so counters read during traffic show a little loss that is not
        loss; it is gone once the traffic has stopped.
        """
        sender = self.ports[rx_port ^ 1]
        run = sender.run
        if run is None or run.paused_at_s is not None or run.started_s > self.advanced_s:
            return 0
        return round(rx_pps * self.in_flight_s)

    def received(self, port_id: int) -> tuple[int, int]:
        """(frames, bytes) received by `port_id` so far, without those still in flight."""
        port = self.ports[port_id]
        frames = self.in_flight(port_id, port.rx_pps)
        if frames == 0 or port.rx_pps <= 0:
            return port.ipackets, port.ibytes
        size = port.rx_bps / 8 / port.rx_pps
        return max(0, port.ipackets - frames), max(0, port.ibytes - round(frames * size))

    def any_active(self) -> bool:
        return any(p.run is not None for p in self.ports)

    def active_ports(self) -> list[int]:
        return [p.port_id for p in self.ports if p.run is not None]
