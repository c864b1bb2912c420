"""Streams as the TRex stateless RPC describes them, and their rates.

A stream arrives as the JSON of ``add_stream``: a packet (base64, without the FCS), a
transmit mode with a rate, a field-engine program and optional flow statistics.  The
lab needs only what shapes the load: the L2 frame size (packet length plus the 4-byte
FCS, as TRex counts it), the destination MAC, the number of distinct flows the field
engine makes, the mode and rate, and the packet group it is counted in.
"""

from __future__ import annotations

import base64
import binascii
import math
from dataclasses import dataclass
from typing import Any

from lab.errors import LabError

FCS_BYTES = 4
WIRE_OVERHEAD_BYTES = 20  # preamble, SFD and inter-frame gap (IEEE 802.3 clause 4.4.2)
MODES = ("continuous", "single_burst", "multi_burst")
RATE_TYPES = ("pps", "bps_L1", "bps_L2", "percentage")
MAX_FLOWS = 1 << 32


class StreamError(LabError):
    """An ``add_stream`` request the server refuses; the message is shown to the user."""


@dataclass(frozen=True)
class Stream:
    """One stream of a port, parsed from its ``add_stream`` JSON."""

    stream_id: int
    raw: dict[str, Any]  # as received, returned by get_all_streams
    l2_bytes: int  # frame size on the wire without preamble, FCS included
    dst_mac: str
    flows: int
    mode: str
    rate_type: str
    rate_value: float
    total_pkts: int  # single burst: frames; multi burst: frames per burst
    ibg_us: float  # multi burst: gap between bursts
    burst_count: int  # multi burst: number of bursts
    isg_us: float  # delay before the stream starts
    enabled: bool
    self_start: bool
    next_stream_id: int
    pg_id: int | None
    latency: bool  # a latency stream keeps its own rate under any multiplier

    @property
    def wire_bytes(self) -> int:
        return self.l2_bytes + WIRE_OVERHEAD_BYTES

    def base_pps(self, speed_bps: float) -> float:
        """The stream's rate in frames per second before any multiplier."""
        if self.rate_type == "pps":
            return self.rate_value
        if self.rate_type == "bps_L2":
            return self.rate_value / (self.l2_bytes * 8)
        if self.rate_type == "bps_L1":
            return self.rate_value / (self.wire_bytes * 8)
        return self.rate_value / 100.0 * speed_bps / (self.wire_bytes * 8)

    @property
    def planned_pkts(self) -> int | None:
        """Frames a burst stream sends in total; None for a continuous stream."""
        if self.mode == "single_burst":
            return self.total_pkts
        if self.mode == "multi_burst":
            return self.total_pkts * self.burst_count
        return None

    def active_s(self, pps: float) -> float | None:
        """How long a burst stream transmits at `pps`, gaps included."""
        if self.mode == "continuous" or pps <= 0:
            return None
        if self.mode == "single_burst":
            return self.total_pkts / pps
        bursts_s = self.burst_count * self.total_pkts / pps
        return bursts_s + max(0, self.burst_count - 1) * self.ibg_us * 1e-6


def parse_stream(stream_id: int, data: Any) -> Stream:
    """Validate the ``stream`` object of an ``add_stream`` request."""
    if not isinstance(data, dict):
        raise StreamError("stream must be an object")
    packet = _field(data, "packet", dict)
    try:
        binary = base64.b64decode(_field(packet, "binary", str), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise StreamError(f"packet binary is not valid base64: {exc}") from exc
    if len(binary) < 14:
        raise StreamError(f"packet is too short ({len(binary)} bytes) for an Ethernet header")
    mode = _field(data, "mode", dict)
    mode_type = _field(mode, "type", str)
    if mode_type not in MODES:
        raise StreamError(f"unknown mode type '{mode_type}'")
    rate = _field(mode, "rate", dict)
    rate_type = _field(rate, "type", str)
    if rate_type not in RATE_TYPES:
        raise StreamError(f"unknown rate type '{rate_type}'")
    rate_value = float(_number(rate, "value"))
    if not rate_value > 0 or not math.isfinite(rate_value):
        raise StreamError(f"rate must be positive, got {rate_value}")

    total, ibg_us, count = 0, 0.0, 1
    if mode_type == "single_burst":
        total = int(_number(mode, "total_pkts"))
    elif mode_type == "multi_burst":
        total = int(_number(mode, "pkts_per_burst"))
        ibg_us = float(_number(mode, "ibg"))
        count = int(_number(mode, "count"))
    if mode_type != "continuous" and (total < 1 or count < 1):
        raise StreamError("a burst needs at least one packet and one burst")

    flow_stats = data.get("flow_stats") or {}
    pg_id = None
    latency = False
    if flow_stats.get("enabled"):
        pg_id = int(_number(flow_stats, "stream_id"))
        latency = flow_stats.get("rule_type", "stats") == "latency"

    return Stream(
        stream_id=stream_id,
        raw=data,
        l2_bytes=len(binary) + FCS_BYTES,
        dst_mac=":".join(f"{b:02x}" for b in binary[:6]),
        flows=flow_count(data.get("vm") or {}),
        mode=mode_type,
        rate_type=rate_type,
        rate_value=rate_value,
        total_pkts=total,
        ibg_us=ibg_us,
        burst_count=count,
        isg_us=float(data.get("isg", 0.0) or 0.0),
        enabled=bool(data.get("enabled", True)),
        self_start=bool(data.get("self_start", True)),
        next_stream_id=int(data.get("next_stream_id", -1)),
        pg_id=pg_id,
        latency=latency,
    )


def flow_count(vm: dict[str, Any]) -> int:
    """Distinct flows a field-engine program makes.

    Each ``flow_var`` walks its range (``(max - min) / step + 1`` values, or a
    ``value_list``); variables that step together repeat with the least common
    multiple of their lengths.  A ``tuple_flow_var`` makes ``ips x ports`` tuples.
    """
    sizes = []
    for ins in vm.get("instructions", []) or []:
        if not isinstance(ins, dict):
            continue
        kind = ins.get("type")
        if kind == "flow_var":
            if ins.get("value_list"):
                sizes.append(len(ins["value_list"]))
                continue
            low, high = int(ins.get("min_value", 0)), int(ins.get("max_value", 0))
            step = max(1, int(ins.get("step", 1)))
            sizes.append(max(1, (high - low) // step + 1))
        elif kind == "tuple_flow_var":
            ips = int(ins.get("ip_max", 0)) - int(ins.get("ip_min", 0)) + 1
            ports = int(ins.get("port_max", 0)) - int(ins.get("port_min", 0)) + 1
            sizes.append(max(1, ips) * max(1, ports))
    flows = 1
    for size in sizes:
        flows = math.lcm(flows, size)
        if flows >= MAX_FLOWS:
            return MAX_FLOWS
    return flows


def _field(obj: dict[str, Any], key: str, kind: type) -> Any:
    value = obj.get(key)
    if not isinstance(value, kind):
        raise StreamError(f"field '{key}' is missing or not of type {kind.__name__}")
    return value


def _number(obj: dict[str, Any], key: str) -> float:
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise StreamError(f"field '{key}' is missing or not a number")
    return float(value)
