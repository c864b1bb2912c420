"""An NFVBench-compatible REST server over the lab's data plane.

It answers NFVBench's server-mode HTTP API: ``POST /start_run`` with a JSON config
overlay starts a run in the background (``{"status": "PENDING", "request_id": ...}``),
``GET /status/<request_id>`` (or ``/status`` for the latest) answers PENDING, ERROR with
an ``error_message``, or OK with the run's ``result``.  One run at a time, as NFVBench.

Config keys understood (NFVBench's names): ``duration_sec`` (60), ``rate`` ("ndr_pdr", or
a total rate over all directions: "2Mpps", "500000pps", "40%"), ``flow_count`` (1),
``frame_sizes`` (["64"]; "IMIX" is 64/594/1518 at 7:4:1), ``traffic.bidirectional``
(true), ``measurement`` ({"NDR": 0.001, "PDR": 0.1, "load_epsilon": 0.1}, all percent).
Anything else is an ERROR naming the key, rather than silently ignored.

NDR/PDR follow NFVBench's binary search: over 0..100 % of line rate, trials of
``duration_sec`` at the midpoint, until the interval is narrower than ``load_epsilon``
percent; a load passes a target when its drop rate in percent is at most the target.
Result per frame size: ``{"ndr": {...}, "pdr": {...}}`` with ``rate_pps`` (total),
``rate_bps`` (L1, 20 bytes per frame of preamble and gap), ``rate_percent`` (of line
rate per direction), ``duration_sec`` and ``stats`` per port index and ``overall``
(tx/rx ``total_pkts``, rx ``dropped_pkts``, latency ``min/avg/max_delay_usec`` and
``lat_percentile``).  Runs take the lab's virtual time.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from lab.clock import VirtualClock
from lab.dataplane import WIRE_OVERHEAD_BYTES, DataPlane, Lane, LaneOutcome

if TYPE_CHECKING:
    from lab.supervisor import LabContext

log = logging.getLogger(__name__)

IMIX = ((64, 7.0), (594, 4.0), (1518, 1.0))
KNOWN_KEYS = {"duration_sec", "rate", "flow_count", "frame_sizes", "traffic", "measurement"}
VERSION = "lab-5.0"


class ConfigError(ValueError):
    """The config overlay of a run is not acceptable."""


def _sizes(label: str) -> tuple[tuple[int, float], ...]:
    if label.upper() == "IMIX":
        return IMIX
    if not re.fullmatch(r"\d+", label) or not 64 <= int(label) <= 9000:
        raise ConfigError(f"invalid frame size {label!r}: use 64..9000 or IMIX")
    return ((int(label), 1.0),)


def _rate(text: str) -> tuple[str, float]:
    m = re.fullmatch(r"\s*([0-9.]+)\s*(pps|kpps|Mpps|%)\s*", text)
    if not m:
        raise ConfigError(f"invalid rate {text!r}: use ndr_pdr, <n>pps, <n>Mpps or <n>%")
    value = float(m.group(1)) * {"pps": 1.0, "kpps": 1e3, "Mpps": 1e6, "%": 1.0}[m.group(2)]
    return ("percent" if m.group(2) == "%" else "pps"), value


class Run:
    def __init__(self, config: dict[str, Any]) -> None:
        unknown = sorted(set(config) - KNOWN_KEYS)
        if unknown:
            raise ConfigError(f"unknown config key {unknown[0]!r}")
        self.config = config
        self.duration_s = float(config.get("duration_sec", 60))
        if self.duration_s <= 0:
            raise ConfigError("duration_sec must be positive")
        self.flows = int(config.get("flow_count", 1))
        if self.flows < 1:
            raise ConfigError("flow_count must be at least 1")
        self.frame_sizes = [str(s) for s in config.get("frame_sizes", ["64"])]
        for label in self.frame_sizes:
            _sizes(label)
        self.bidirectional = bool(config.get("traffic", {}).get("bidirectional", True))
        rate = str(config.get("rate", "ndr_pdr"))
        self.rate = None if rate == "ndr_pdr" else _rate(rate)
        measurement = config.get("measurement", {})
        self.ndr_pct = float(measurement.get("NDR", 0.001))
        self.pdr_pct = float(measurement.get("PDR", 0.1))
        self.epsilon_pct = float(measurement.get("load_epsilon", 0.1))
        if not 0 < self.epsilon_pct < 100:
            raise ConfigError("measurement.load_epsilon must be in (0, 100) percent")


class NfvbenchServer:
    """The emulated NFVBench server; `start` listens on loopback, `stop` shuts down."""

    def __init__(
        self,
        dataplane: DataPlane,
        clock: VirtualClock,
        host: str = "127.0.0.1",
        port: int = 0,
        port_speed_bps: float = 25e9,
    ) -> None:
        self.dataplane = dataplane
        self.clock = clock
        self.port_speed_bps = port_speed_bps
        self._results: dict[str, dict[str, Any]] = {}
        self._current: str | None = None
        self._latest: str | None = None
        self._count = 0
        self._lock = threading.Lock()
        server = self
        self._http = ThreadingHTTPServer((host, port), _handler(server))
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._http.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)
        self._thread.start()
        log.info("NFVBench-compatible server on %s", self.url)

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()

    # --- API

    def start_run(self, config: Any) -> dict[str, Any]:
        if not isinstance(config, dict):
            return {"status": "ERROR", "error_message": "the config must be a JSON object"}
        try:
            run = Run(config)
        except (ConfigError, TypeError, ValueError) as exc:
            return {"status": "ERROR", "error_message": f"invalid config: {exc}"}
        with self._lock:
            if self._current is not None:
                return {
                    "status": "ERROR",
                    "error_message": "there is already an NFVbench request running",
                }
            self._count += 1
            request_id = f"run-{self._count}"
            self._current = self._latest = request_id
        threading.Thread(target=self._execute, args=(request_id, run), daemon=True).start()
        return {
            "status": "PENDING",
            "request_id": request_id,
            "error_message": "nfvbench run still pending",
        }

    def status(self, request_id: str | None) -> dict[str, Any]:
        with self._lock:
            ident = request_id or self._latest
            if ident is None:
                return {"status": "ERROR", "error_message": "no pending NFVbench run"}
            if ident == self._current:
                return {"status": "PENDING", "error_message": "nfvbench run still pending"}
            if ident not in self._results:
                return {"status": "NOT_FOUND", "error_message": f"request {ident} not found"}
            return self._results[ident]

    # --- runs

    def _execute(self, request_id: str, run: Run) -> None:
        results = {}
        for label in run.frame_sizes:
            if run.rate is None:
                results[label] = self._ndr_pdr(run, label)
            else:
                kind, value = run.rate
                total = value if kind == "pps" else self._line_pps(label, run) * value / 100
                results[label] = self._trial(run, label, total)
        body = {
            "status": "OK",
            "result": {
                "date": time.strftime("%Y-%m-%d %H:%M:%S"),
                "nfvbench_version": VERSION,
                "config": run.config,
                "benchmarks": {
                    "network": {
                        "service_chain": {
                            "EXT": {
                                "result": {
                                    "bidirectional": run.bidirectional,
                                    "compute_nodes": {},
                                    "result": results,
                                }
                            }
                        }
                    }
                },
            },
        }
        with self._lock:
            self._results[request_id] = body
            self._current = None

    def _line_pps(self, label: str, run: Run) -> float:
        """Total line rate over the loaded directions."""
        sizes = _sizes(label)
        mean = sum(s * w for s, w in sizes) / sum(w for _, w in sizes)
        return (
            self.port_speed_bps
            / ((mean + WIRE_OVERHEAD_BYTES) * 8)
            * (2 if run.bidirectional else 1)
        )

    def _trial(self, run: Run, label: str, total_pps: float) -> dict[str, Any]:
        directions = ((0, 1), (1, 0)) if run.bidirectional else ((0, 1),)
        sizes = _sizes(label)
        lanes = [Lane(a, b, total_pps / len(directions), sizes, run.flows) for a, b in directions]
        start_s = self.clock.now_s()
        outcomes = self.dataplane.forward(lanes, start_s, run.duration_s)
        self.clock.sleep(run.duration_s)
        mean = sum(s * w for s, w in sizes) / sum(w for _, w in sizes)
        offered = sum(o.offered for o in outcomes)
        forwarded = sum(o.forwarded for o in outcomes)
        drop_pct = 100.0 * (offered - forwarded) / offered if offered else 100.0
        return {
            "rate_pps": total_pps,
            "rate_bps": total_pps * (mean + WIRE_OVERHEAD_BYTES) * 8,
            "rate_percent": 100.0 * total_pps / self._line_pps(label, run),
            "duration_sec": run.duration_s,
            "stats": _stats(outcomes, drop_pct),
        }

    def _ndr_pdr(self, run: Run, label: str) -> dict[str, Any]:
        line = self._line_pps(label, run)
        out = {}
        for name, target_pct in (("ndr", run.ndr_pct), ("pdr", run.pdr_pct)):
            left, right = 0.0, 100.0
            best: dict[str, Any] | None = None
            while right - left > run.epsilon_pct:
                middle = (left + right) / 2
                trial = self._trial(run, label, line * middle / 100)
                if trial["stats"]["overall"]["drop_rate_percent"] <= target_pct:
                    left, best = middle, trial
                else:
                    right = middle
            out[name] = best if best is not None else {"rate_pps": 0, "rate_percent": 0.0}
        return out


def _stats(outcomes: list[LaneOutcome], drop_pct: float) -> dict[str, Any]:
    stats: dict[str, Any] = {}
    for outcome in outcomes:
        lat = outcome.latency
        rx: dict[str, Any] = {"total_pkts": outcome.forwarded, "dropped_pkts": outcome.lost}
        if lat is not None:
            rx.update(
                min_delay_usec=lat.min_us,
                avg_delay_usec=lat.mean_us,
                max_delay_usec=lat.max_us,
                lat_percentile={
                    "50.0": lat.p50_us,
                    "90.0": lat.p90_us,
                    "99.0": lat.p99_us,
                    "99.9": lat.p999_us,
                },
            )
        stats[str(outcome.lane.tx_port)] = {
            "tx": {"total_pkts": outcome.offered},
            "rx": rx,
            "rx_port": outcome.lane.rx_port,
        }
    stats["overall"] = {
        "tx": {"total_pkts": sum(o.offered for o in outcomes)},
        "rx": {
            "total_pkts": sum(o.forwarded for o in outcomes),
            "dropped_pkts": sum(o.lost for o in outcomes),
        },
        "drop_rate_percent": drop_pct,
    }
    return stats


def _handler(server: NfvbenchServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            log.debug("%s " + format, self.address_string(), *args)

        def _send(self, body: dict[str, Any], code: int = 200) -> None:
            data = json.dumps(body).encode("utf-8")
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            if self.path.rstrip("/") != "/start_run":
                self._send({"status": "ERROR", "error_message": f"no route {self.path}"}, 404)
                return
            length = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(length) if length else b"{}"
            try:
                config = json.loads(raw or b"{}")
            except json.JSONDecodeError:
                self._send({"status": "ERROR", "error_message": "the config is not JSON"}, 400)
                return
            self._send(server.start_run(config))

        def do_GET(self) -> None:
            parts = [p for p in self.path.split("/") if p]
            if parts and parts[0] == "status" and len(parts) <= 2:
                self._send(server.status(parts[1] if len(parts) == 2 else None))
            elif parts == ["echo"]:
                self._send({"status": "OK"})
            else:
                self._send({"status": "ERROR", "error_message": f"no route {self.path}"}, 404)

    return Handler


class NfvbenchService:
    """The NFVBench-compatible server as a service of the lab supervisor."""

    name = "nfvbench"

    def __init__(self) -> None:
        self.server: NfvbenchServer | None = None

    def start(self, ctx: LabContext) -> dict[str, Any]:
        self.server = NfvbenchServer(
            ctx.dataplane, ctx.clock, host=ctx.host, port_speed_bps=ctx.options.port_speed_bps
        )
        self.server.start()
        return {"url": self.server.url}

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
