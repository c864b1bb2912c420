"""The NFVBench generator: NFVBench's server-mode REST API as a `Generator`.

A trial is a fixed-rate NFVBench run: ``POST /start_run`` with a config overlay
(``duration_sec``, ``rate`` as a total over all directions in pps, ``flow_count``,
``frame_sizes``, ``traffic.bidirectional``), then ``GET /status/<request_id>`` until it
is no longer PENDING.  `search_ndr_pdr` asks NFVBench for its own NDR/PDR binary search
(``rate: ndr_pdr``) and maps the answer into a `SearchResult` (method
``nfvbench-binary``).  NFVBench's own errors (status ERROR with its message) make a trial
invalid, or raise `GeneratorError` from a search; they are never counts.

Mapping of the result JSON (``result.benchmarks.network.service_chain.<chain>.result.
result.<frame size>``): per port index, ``tx.total_pkts`` is the offered count of the
direction that port sends, and the same entry's ``rx.total_pkts`` what came out of the
far port; latency from ``rx.min/avg/max_delay_usec`` and ``lat_percentile``.

Caveats: NFVBench runs no continuous traffic with periodic samples, so
`start_continuous` says so (use TRex for disruption measurements); NFVBench has no
separate latency stream at a fixed rate, so latency here is measured on the load.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from traffic.errors import GeneratorError, GeneratorUnavailable
from traffic.model import (
    GOAL_PRESETS,
    Direction,
    GeneratorInfo,
    GeneratorPort,
    Goal,
    GoalResult,
    LaneCounts,
    LatencySummary,
    SearchResult,
    StreamSpec,
    TrafficSample,
    TrialResult,
    TrialSpec,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NfvbenchConfig:
    url: str
    port_speeds_bps: Mapping[int, float] = field(default_factory=dict)
    poll_interval_s: float = 0.05
    request_timeout_s: float = 10.0
    run_timeout_margin_s: float = 60.0


class NfvbenchGenerator:
    kind = "nfvbench"

    def __init__(self, config: NfvbenchConfig) -> None:
        self.config = config
        self.info: GeneratorInfo | None = None

    # --- HTTP

    def _call(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        data = json.dumps(body).encode("utf-8") if body is not None else None
        request = urllib.request.Request(
            self.config.url.rstrip("/") + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.config.request_timeout_s) as reply:
                answer = json.loads(reply.read())
        except urllib.error.HTTPError as exc:
            raise GeneratorError(f"NFVBench {method} {path}: HTTP {exc.code}") from exc
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            raise GeneratorUnavailable(f"NFVBench at {self.config.url}: {exc}") from exc
        except json.JSONDecodeError as exc:
            raise GeneratorError(f"NFVBench {method} {path}: the answer is not JSON") from exc
        if not isinstance(answer, dict):
            raise GeneratorError(f"NFVBench {method} {path}: the answer is not an object")
        return answer

    def _run(self, overlay: Mapping[str, Any], duration_bound_s: float) -> dict[str, Any]:
        """Start a run and wait for its result; NFVBench's errors raise GeneratorError."""
        started = self._call("POST", "/start_run", dict(overlay))
        if started.get("status") != "PENDING":
            raise GeneratorError(f"NFVBench refused the run: {started.get('error_message')}")
        path = f"/status/{started['request_id']}" if "request_id" in started else "/status"
        deadline = time.monotonic() + duration_bound_s + self.config.run_timeout_margin_s
        while True:
            status = self._call("GET", path)
            if status.get("status") == "OK":
                return status
            if status.get("status") != "PENDING":
                raise GeneratorError(f"NFVBench run failed: {status.get('error_message')}")
            if time.monotonic() > deadline:
                raise GeneratorError(f"NFVBench run did not finish within {duration_bound_s} s")
            time.sleep(self.config.poll_interval_s)

    # --- Generator

    def open(self) -> GeneratorInfo:
        answer = self._call("GET", "/status")
        log.debug("NFVBench status on open: %s", answer.get("status"))
        ports = tuple(
            GeneratorPort(port_id=p, speed_bps=s, mac="")
            for p, s in sorted(self.config.port_speeds_bps.items())
        )
        self.info = GeneratorInfo("nfvbench", "", f"REST {self.config.url}", ports)
        return self.info

    def close(self) -> None:
        self.info = None

    def run_trial(self, spec: TrialSpec) -> TrialResult:
        started = time.time()
        try:
            answer = self._run(
                _overlay(
                    spec.streams, spec.intended_duration_s, f"{spec.intended_load_pps:.0f}pps"
                ),
                spec.intended_duration_s,
            )
            per_size = _per_size(answer, spec.streams.frame_label)
            return _trial_result(spec, per_size, started, answer)
        except GeneratorError as exc:
            return TrialResult.invalid(spec, str(exc), started)
        except (KeyError, TypeError, ValueError) as exc:
            return TrialResult.invalid(spec, f"NFVBench result without counts: {exc!r}", started)

    def search_ndr_pdr(
        self,
        streams: StreamSpec,
        duration_s: float = 60.0,
        goals: Sequence[Goal] = GOAL_PRESETS["rfc2544"],
        load_epsilon_pct: float = 0.1,
    ) -> SearchResult:
        """NFVBench's own NDR/PDR binary search; goals give the loss ratios of NDR and PDR."""
        by_name = {g.name: g for g in goals}
        if set(by_name) != {"NDR", "PDR"}:
            raise GeneratorError("NFVBench searches exactly one NDR and one PDR goal")
        overlay = _overlay(streams, duration_s, "ndr_pdr")
        overlay["measurement"] = {
            "NDR": by_name["NDR"].loss_ratio * 100,
            "PDR": by_name["PDR"].loss_ratio * 100,
            "load_epsilon": load_epsilon_pct,
        }
        answer = self._run(overlay, 40 * duration_s)
        per_size = _per_size(answer, streams.frame_label)
        results, trials = [], []
        for goal in goals:
            body = per_size.get(goal.name.lower())
            if not isinstance(body, dict):
                raise GeneratorError(f"NFVBench result has no {goal.name.lower()} entry")
            rate = float(body.get("rate_pps", 0.0))
            if rate > 0 and "stats" in body:
                spec = TrialSpec(streams, rate, float(body.get("duration_sec", duration_s)))
                trials.append(_trial_result(spec, body, None, answer))
            lower = rate if rate > 0 else None
            results.append(GoalResult(goal, lower, None, lower))
        return SearchResult("nfvbench-binary", tuple(results), tuple(trials))

    def start_continuous(self, streams: StreamSpec, load_pps: float) -> None:
        raise GeneratorError(
            "NFVBench runs no continuous traffic with samples; use a TRex generator for "
            "disruption measurements"
        )

    def sample_continuous(self) -> TrafficSample:
        raise GeneratorError("no continuous traffic is running on NFVBench")

    def stop_continuous(self) -> Sequence[TrafficSample]:
        raise GeneratorError("no continuous traffic is running on NFVBench")


def _overlay(streams: StreamSpec, duration_s: float, rate: str) -> dict[str, Any]:
    if streams.replica_macs:
        raise GeneratorError("NFVBench cannot address replicas one by one; use shared-front")
    return {
        "duration_sec": duration_s,
        "rate": rate,
        "flow_count": streams.flows,
        "frame_sizes": [streams.frame_label],
        "traffic": {"bidirectional": streams.direction is Direction.BIDIRECTIONAL},
    }


def _per_size(answer: Mapping[str, Any], label: str) -> dict[str, Any]:
    try:
        chains = answer["result"]["benchmarks"]["network"]["service_chain"]
        chain = next(iter(chains.values()))
        body = chain["result"]["result"][label]
    except (KeyError, TypeError, StopIteration) as exc:
        raise GeneratorError(f"NFVBench result has no entry for frame size {label}") from exc
    if not isinstance(body, dict):
        raise GeneratorError(f"NFVBench result for frame size {label} is not an object")
    return body


def _trial_result(
    spec: TrialSpec, body: Mapping[str, Any], started: float | None, answer: Mapping[str, Any]
) -> TrialResult:
    stats = body.get("stats", {})
    lanes, latency = [], {}
    for tx, rx in spec.streams.direction.lanes:
        port = stats.get(str(tx), {})
        lanes.append(
            LaneCounts(tx, rx, int(port["tx"]["total_pkts"]), int(port["rx"]["total_pkts"]))
        )
        rx_stats = port["rx"]
        if "avg_delay_usec" in rx_stats:
            pct = rx_stats.get("lat_percentile", {})
            latency[f"{tx}->{rx}"] = LatencySummary(
                min_us=float(rx_stats["min_delay_usec"]),
                mean_us=float(rx_stats["avg_delay_usec"]),
                max_us=float(rx_stats["max_delay_usec"]),
                p50_us=float(pct.get("50.0", "nan")),
                p90_us=float(pct.get("90.0", "nan")),
                p99_us=float(pct.get("99.0", "nan")),
                p999_us=float(pct.get("99.9", "nan")),
                samples=int(rx_stats["total_pkts"]),
            )
    version = answer.get("result", {}).get("nfvbench_version", "")
    return TrialResult(
        spec=spec,
        measured_duration_s=spec.intended_duration_s,
        lanes=tuple(lanes),
        latency=latency,
        achieved_tx_pps=sum(lane.offered for lane in lanes) / spec.intended_duration_s,
        started_at=started,
        generator=f"nfvbench {version}",
    )
