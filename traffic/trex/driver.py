"""The TRex generator: the `Generator` protocol over a worker running the TRex client.

Which client library: the current `trex.stl` client speaks STL API 5 (TRex v2.88 and
later), the legacy `trex_stl_lib` speaks STL API 4 (TRex v2.87 and earlier).  With
``client="auto"`` the driver asks the server first, with the very handshakes the two
clients send (`probe_api`), and says which one it uses and why, or why neither fits.

The trial procedure (RFC 2544 §23-§26 as TRex runs it): load the streams, clear the
counters, start with the intended duration, wait until the ports are idle, wait the rx
delay for frames in flight, then read the counters.  Loss per direction comes from port
counters, less the latency stream's frames counted by its packet group; latency comes
from the packet group's statistics, with the HDR histogram kept.  The achieved transmit
rate is checked against the intended one: a generator that fell short gets a warning,
as its shortfall is not CNF loss.

Faults never become measurements: an RPC error, a lost connection, a port that is down
or a worker that died or hung yields an invalid `TrialResult` with its reason;
`traffic.trial.TrialRunner` reconnects (`close` then `open`) and repeats the trial.

Caveats: the measured duration is the intended one (TRex stops the ports itself after
the duration; it reports no transmit time); continuous-traffic sample times are wall
seconds since `start_continuous`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zmq
from hdrh.histogram import HdrHistogram

from traffic.errors import GeneratorError, GeneratorUnavailable
from traffic.model import (
    GeneratorInfo,
    GeneratorPort,
    LaneCounts,
    LatencySummary,
    PortTarget,
    StreamSpec,
    TrafficSample,
    TrialResult,
    TrialSpec,
)
from traffic.streams import StreamPlan, build_plan
from traffic.trex.channel import WorkerChannel, WorkerFailed

log = logging.getLogger(__name__)

CURRENT_API = {"name": "STL", "major": 5, "minor": 1}  # what trex.stl 3.04 sends
LEGACY_API = [{"type": "core", "major": 4, "minor": 1}]  # what trex-stl-lib 0.3 sends
SHORTFALL_TOLERANCE = 0.01  # achieved tx rate this far below intended earns a warning
# Where each client generation lives in a TRex installation (relative to its root), and
# the file that shows it is there.
CLIENT_LAYOUT = {
    "current": ("trex/stl/api.py", ("automation/trex_control_plane/interactive", "")),
    "legacy": (
        "trex_stl_lib/api.py",
        ("automation/trex_control_plane/stl", "automation/trex_control_plane/interactive", ""),
    ),
}


def client_directory(trex_path: str, client: str) -> str:
    """The directory to import `client`'s library from, given a TRex installation's root
    (``/opt/trex/v3.04``) or the client directory inside it."""
    marker, places = CLIENT_LAYOUT[client]
    root = Path(trex_path).expanduser()
    tried = []
    for place in places:
        candidate = root / place if place else root
        if (candidate / marker).is_file():
            return str(candidate.absolute())
        tried.append(str(candidate / marker))
    raise GeneratorUnavailable(
        f"testbed generator.trex_path {trex_path}: no {client} TRex client there "
        f"(looked for {', '.join(tried)})"
    )


@dataclass(frozen=True)
class TrexConfig:
    """Where the TRex server is and how to drive it; `ports` carry per-port addressing."""

    host: str = "127.0.0.1"
    sync_port: int = 4501
    async_port: int = 4500
    client: str = "auto"  # "auto", "current" or "legacy"
    trex_path: str | None = None  # a TRex installation, or its client directory
    ports: tuple[PortTarget, ...] = (PortTarget(0), PortTarget(1))
    port_speeds_bps: Mapping[int, float] = field(default_factory=dict)  # from the profile
    rx_delay_s: float = 0.1
    request_timeout_s: float = 30.0  # connect, load, sample, stop
    trial_timeout_margin_s: float = 30.0  # added to the trial duration

    def __post_init__(self) -> None:
        if self.client not in ("auto", "current", "legacy"):
            raise GeneratorUnavailable(f"TRex client {self.client!r}: use auto, current or legacy")


@dataclass(frozen=True)
class ClientChoice:
    client: str  # "current" or "legacy"
    reason: str


def _rpc(sock: zmq.Socket[bytes], method: str, params: Any) -> Any:
    request = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    sock.send(json.dumps(request).encode("utf-8"))
    return json.loads(sock.recv())


def probe_api(host: str, sync_port: int, timeout_s: float = 3.0) -> ClientChoice:
    """Ask the server which STL API it speaks, with each client's own handshake."""
    endpoint = f"tcp://{host}:{sync_port}"
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
    notes = []
    for client, method, params in (
        ("current", "api_sync_v2", CURRENT_API),
        ("legacy", "api_sync", {"api_vers": LEGACY_API}),
    ):
        sock = context.socket(zmq.REQ)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.RCVTIMEO, round(timeout_s * 1000))
        sock.setsockopt(zmq.SNDTIMEO, round(timeout_s * 1000))
        try:
            sock.connect(endpoint)
            reply = _rpc(sock, method, params)
        except zmq.Again as exc:
            raise GeneratorUnavailable(
                f"no TRex server answered at {endpoint} within {timeout_s:.0f} s: "
                "check that it runs and the sync port is right"
            ) from exc
        except (zmq.ZMQError, json.JSONDecodeError) as exc:
            raise GeneratorUnavailable(f"TRex at {endpoint}: {exc}") from exc
        finally:
            sock.close()
        if isinstance(reply, dict) and "result" in reply:
            api = "STL API 5" if client == "current" else "STL API 4"
            return ClientChoice(client, f"the server accepted the {api} handshake ({method})")
        error = reply.get("error", {}) if isinstance(reply, dict) else {}
        notes.append(f"{method}: {error.get('message', reply)}")
    raise GeneratorUnavailable(
        f"TRex at {endpoint} accepts neither client: "
        + "; ".join(notes)
        + " (current trex.stl needs STL API 5.1, TRex v2.97+; legacy trex_stl_lib needs "
        "STL API 4, TRex v2.82-v2.87); give testbed generator.trex_path of a matching "
        "TRex client"
    )


def _percentile_summary(latency: Mapping[str, Any], samples: int) -> LatencySummary | None:
    if latency.get("average") is None:
        return None
    encoded = latency.get("hdrh")
    hdrh = str(encoded) if encoded else None
    if hdrh:
        histogram = HdrHistogram.decode(hdrh)
        pct = [float(histogram.get_value_at_percentile(p)) for p in (50, 90, 99, 99.9)]
    else:
        pct = _bucket_percentiles(latency.get("histogram") or {}, (50, 90, 99, 99.9))
    min_us = float(latency.get("total_min") or 0.0)
    max_us = float(latency.get("total_max") or 0.0)
    if max_us > 0:
        # Histogram percentiles are bucket values; keep them within the measured extremes.
        pct = [min(max(p, min_us), max_us) for p in pct]
    return LatencySummary(
        min_us=min_us,
        mean_us=float(latency["average"]),
        max_us=max_us,
        p50_us=pct[0],
        p90_us=pct[1],
        p99_us=pct[2],
        p999_us=pct[3],
        samples=samples,
        hdrh=hdrh,
    )


def _bucket_percentiles(buckets: Mapping[str, Any], percents: Sequence[float]) -> list[float]:
    """Percentiles from TRex's coarse histogram (bucket floor in us -> count)."""
    items = sorted((float(k), int(v)) for k, v in buckets.items())
    total = sum(c for _, c in items)
    out = []
    for p in percents:
        if total == 0:
            out.append(math.nan)
            continue
        threshold, seen = total * p / 100.0, 0
        value = items[-1][0]
        for floor_us, count in items:
            seen += count
            if seen >= threshold:
                value = floor_us
                break
        out.append(value)
    return out


class TrexGenerator:
    """A `Generator` over TRex.  Use `open` first; `close` stops traffic and frees ports."""

    kind = "trex"

    def __init__(self, config: TrexConfig) -> None:
        self.config = config
        self.choice: ClientChoice | None = None
        self.info: GeneratorInfo | None = None
        self._channel: WorkerChannel | None = None
        self._plans: dict[str, StreamPlan] = {}
        self._continuous: _Continuous | None = None
        # wall seconds of the last trial inside the worker (load, run, stats), and all
        self.last_timing: dict[str, float] = {}
        # after a fault the worker's session is suspect: close kills it rather than
        # asking it to stop and release (the next session force-acquires the ports)
        self._faulted = False

    # --- session

    def open(self) -> GeneratorInfo:
        config = self.config
        if self.choice is None:
            if config.client == "auto":
                self.choice = probe_api(config.host, config.sync_port)
            else:
                self.choice = ClientChoice(config.client, "named by the testbed profile")
            log.info("TRex client: %s (%s)", self.choice.client, self.choice.reason)
        args = ["--client", self.choice.client]
        if config.trex_path:
            args += ["--trex-path", client_directory(config.trex_path, self.choice.client)]
        channel = WorkerChannel("traffic.trex.worker", args, name="trex-worker")
        channel.start()
        self._channel = channel
        port_ids = [t.port_id for t in config.ports]
        try:
            reply = channel.request(
                "connect",
                config.request_timeout_s,
                server=config.host,
                sync_port=config.sync_port,
                async_port=config.async_port,
                ports=port_ids,
            )
        except GeneratorError as exc:
            channel.kill()
            self._channel = None
            raise GeneratorUnavailable(
                f"TRex at {config.host}:{config.sync_port} ({self.choice.client} client): {exc}"
            ) from exc
        ports = tuple(
            GeneratorPort(
                port_id=int(p["port_id"]),
                speed_bps=float(config.port_speeds_bps.get(int(p["port_id"]), p["speed_bps"])),
                mac=str(p["mac"]),
                driver=str(p.get("driver", "")),
                numa=p.get("numa"),
            )
            for p in reply["ports"]
        )
        self.info = GeneratorInfo("trex", str(reply["version"]), str(reply["client"]), ports)
        return self.info

    def close(self) -> None:
        if self._channel is not None:
            if self._faulted:
                self._channel.kill()
            else:
                self._channel.stop(timeout_s=self.config.request_timeout_s)
            self._channel = None
        self._continuous = None
        self._faulted = False

    def __enter__(self) -> TrexGenerator:
        self.open()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @property
    def worker_pid(self) -> int | None:
        return self._channel.pid if self._channel else None

    # --- trials

    def plan(self, streams: StreamSpec) -> StreamPlan:
        """The stream plan for `streams` (cached; rebuilt when the replica set changes)."""
        if self.info is None:
            raise GeneratorError("open the TRex generator before building streams")
        macs = {p.port_id: p.mac for p in self.info.ports}
        targets = streams.targets or self.config.ports
        plan = build_plan(streams, macs, targets)
        return self._plans.setdefault(plan.key(), plan)

    def run_trial(self, spec: TrialSpec) -> TrialResult:
        started = time.time()
        if self._channel is None or not self._channel.alive or self.info is None:
            return TrialResult.invalid(spec, "TRex worker not connected", started)
        plan = self.plan(spec.streams)
        timeout = spec.intended_duration_s + self.config.rx_delay_s
        timeout += self.config.trial_timeout_margin_s
        try:
            stats = self._channel.request(
                "trial",
                timeout,
                streams=plan.rated(spec.load_per_direction_pps),
                ports=list(plan.ports),
                duration_s=spec.intended_duration_s,
                rx_delay_s=self.config.rx_delay_s,
            )
        except WorkerFailed as exc:
            self._faulted = exc.kind != "port-down"
            return TrialResult.invalid(spec, f"TRex {exc.kind}: {exc}", started)
        except GeneratorError as exc:
            self._faulted = True
            return TrialResult.invalid(spec, f"TRex worker lost: {exc}", started)
        self.last_timing = {k: float(v) for k, v in stats.get("timing", {}).items()}
        self.last_timing["total_s"] = time.time() - started
        return self._result(spec, plan, stats, started)

    def _result(
        self, spec: TrialSpec, plan: StreamPlan, stats: Mapping[str, Any], started: float
    ) -> TrialResult:
        lanes = _lane_counts(plan, stats)
        if any(lane.offered <= 0 for lane in lanes):
            return TrialResult.invalid(spec, "TRex sent no load frames on a loaded port", started)
        warnings = []
        duration = spec.intended_duration_s
        achieved = sum(lane.offered for lane in lanes) / duration
        if achieved < spec.intended_load_pps * (1 - SHORTFALL_TOLERANCE):
            warnings.append(
                f"generator short of intended load: sent {achieved:.0f} pps of "
                f"{spec.intended_load_pps:.0f} pps; the shortfall is not CNF loss"
            )
        for port, counters in stats["ports"].items():
            if counters.get("oerrors") or counters.get("ierrors"):
                warnings.append(
                    f"port {port}: {counters.get('oerrors')} tx errors, "
                    f"{counters.get('ierrors')} rx errors"
                )
        latency = {}
        for label, pg in plan.latency_pg_ids.items():
            rx_port = label.split("->")[1]
            samples = stats["flow_stats"].get(str(pg), {}).get("rx_pkts", {}).get(rx_port, 0)
            summary = _percentile_summary(stats["latency"].get(str(pg), {}), int(samples))
            if summary is not None:
                latency[label] = summary
        assert self.info is not None
        return TrialResult(
            spec=spec,
            measured_duration_s=duration,
            lanes=lanes,
            latency=latency,
            warnings=tuple(warnings),
            achieved_tx_pps=achieved,
            started_at=started,
            generator=f"trex {self.info.version} via {self.info.client}",
        )

    # --- continuous traffic

    def start_continuous(self, streams: StreamSpec, load_pps: float) -> None:
        """Start load without a duration; the latency streams are left out (latency is
        measured by latency trials, and packet-group latency read while traffic runs
        is not yet settled)."""
        if self._channel is None or self.info is None:
            raise GeneratorError("open the TRex generator before starting traffic")
        plan = self.plan(dataclasses.replace(streams, latency_rate_pps=0.0))
        stats = self._channel.request(
            "start",
            self.config.request_timeout_s,
            streams=plan.rated(load_pps / len(plan.lanes)),
            ports=list(plan.ports),
        )
        self._continuous = _Continuous(plan, time.monotonic(), stats)

    def sample_continuous(self) -> TrafficSample:
        running, channel = self._running()
        ports = list(running.plan.ports)
        return running.add(channel.request("sample", self.config.request_timeout_s, ports=ports))

    def stop_continuous(self) -> Sequence[TrafficSample]:
        running, channel = self._running()
        stats = channel.request(
            "stop",
            self.config.request_timeout_s + self.config.rx_delay_s,
            ports=list(running.plan.ports),
            rx_delay_s=self.config.rx_delay_s,
        )
        running.add(stats)
        self._continuous = None
        return tuple(running.samples)

    def _running(self) -> tuple[_Continuous, WorkerChannel]:
        if self._continuous is None or self._channel is None:
            raise GeneratorError("no continuous traffic is running")
        return self._continuous, self._channel


@dataclass
class _Continuous:
    plan: StreamPlan
    t0: float  # monotonic time of the start
    previous: Mapping[str, Any]  # the counters of the last sample
    samples: list[TrafficSample] = field(default_factory=list)

    def add(self, stats: Mapping[str, Any]) -> TrafficSample:
        now = _lane_counts(self.plan, stats)
        before = _lane_counts(self.plan, self.previous)
        sample = TrafficSample(
            time_s=time.monotonic() - self.t0,
            offered=sum(a.offered for a in now) - sum(b.offered for b in before),
            forwarded=sum(a.forwarded for a in now) - sum(b.forwarded for b in before),
        )
        self.samples.append(sample)
        self.previous = stats
        return sample


def _lane_counts(plan: StreamPlan, stats: Mapping[str, Any]) -> tuple[LaneCounts, ...]:
    """Load frames per direction: port counters less the latency stream's frames."""
    out = []
    for tx, rx in plan.lanes:
        offered = int(stats["ports"][str(tx)]["opackets"])
        forwarded = int(stats["ports"][str(rx)]["ipackets"])
        pg = plan.latency_pg_ids.get(f"{tx}->{rx}")
        if pg is not None:
            flow = stats["flow_stats"].get(str(pg), {})
            offered -= int(flow.get("tx_pkts", {}).get(str(tx), 0))
            forwarded -= int(flow.get("rx_pkts", {}).get(str(rx), 0))
        out.append(LaneCounts(tx, rx, offered, forwarded))
    return tuple(out)
