"""Streams from a `StreamSpec`: frames, flows, rates and latency streams, as plain data.

The plan is built here, in the controller, without any generator library: frames are
assembled byte by byte (Ethernet, optional 802.1Q tag, IPv4, UDP) and the field engine
is described by numeric byte offsets into them.  The TRex worker turns each planned
stream into the client library's objects; numeric offsets compile with every client
generation, where field names (``"IP.src"``) do not with every scapy release.

Frame sizes are L2 sizes including the 4-byte FCS, which the NIC appends, so a planned
packet is ``frame_l2_bytes - 4`` bytes long.

Flows: *N* flows vary the IPv4 source address over *N* values and the UDP source port
over *p* values, *p* the largest divisor of *N* not above 64 000, both incrementing per
packet; the pair then cycles through exactly *N* distinct 5-tuples.

Steering: through a shared front every load stream of a port carries all flows to one
destination MAC (the port's, or the front's); addressed per replica, each ready replica
gets its own stream group with its MAC (from the pod's Multus network-status
annotation, `replica_macs_from_network_status`) and an equal share of flows and load.

Latency: one stream per loaded direction at a fixed rate, with a packet-group id whose
frames the worker counts apart from the load (TRex flow-stats rule "latency").
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from traffic.errors import StreamError
from traffic.model import PortTarget, StreamSpec
from traffic.units import FrameMix

FCS_BYTES = 4
ETH_HEADER_BYTES = 14
VLAN_TAG_BYTES = 4
IPV4_HEADER_BYTES = 20
UDP_HEADER_BYTES = 8
MAX_PORT_VALUES = 64_000
UDP_SRC_PORT_BASE = 1024
UDP_DST_PORT = 12
BROADCAST_MAC = "ff:ff:ff:ff:ff:ff"
# Source and destination address blocks per transmitting port (TRex's own convention:
# 16.0.0.0/8 on the client side, 48.0.0.0/8 on the server side).
ADDRESS_BLOCKS = {0: (0x10000001, 0x30000001), 1: (0x30000001, 0x10000001)}
LATENCY_PG_BASE = 0x100


@dataclass(frozen=True)
class FieldVar:
    """A field-engine variable written at a byte offset of the packet."""

    name: str
    offset: int
    size: int  # bytes: 2 or 4
    min_value: int
    max_value: int
    op: str = "inc"


@dataclass(frozen=True)
class PlannedStream:
    """One stream of a plan; `rate_fraction` of its lane's load, or `fixed_pps`."""

    name: str
    tx_port: int
    rx_port: int
    frame_l2_bytes: int
    packet_hex: str  # the frame without FCS
    rate_fraction: float
    fixed_pps: float | None = None
    pg_id: int | None = None
    flow_vars: tuple[FieldVar, ...] = ()
    ipv4_offset: int | None = None  # where the worker fixes the IPv4 checksum

    @property
    def latency(self) -> bool:
        return self.fixed_pps is not None

    def packet(self) -> bytes:
        return bytes.fromhex(self.packet_hex)


@dataclass(frozen=True)
class StreamPlan:
    streams: tuple[PlannedStream, ...]
    lanes: tuple[tuple[int, int], ...]
    latency_pg_ids: Mapping[str, int]  # lane label "0->1" -> pg_id

    @property
    def ports(self) -> tuple[int, ...]:
        return tuple(sorted({p for lane in self.lanes for p in lane}))

    def rated(self, load_per_lane_pps: float) -> list[dict[str, Any]]:
        """The streams as JSON-ready dicts with their absolute rate (`pps`)."""
        out = []
        for stream in self.streams:
            body = asdict(stream)
            body["pps"] = (
                stream.fixed_pps
                if stream.fixed_pps is not None
                else stream.rate_fraction * load_per_lane_pps
            )
            out.append(body)
        return out

    def key(self) -> str:
        return json.dumps([asdict(s) for s in self.streams], sort_keys=True)


# --- frames ------------------------------------------------------------------------


def mac_bytes(mac: str) -> bytes:
    parts = mac.split(":")
    if len(parts) != 6:
        raise StreamError(f"MAC address {mac!r} needs six colon-separated octets")
    try:
        return bytes(int(p, 16) for p in parts)
    except ValueError as exc:
        raise StreamError(f"MAC address {mac!r} is not hexadecimal") from exc


def ipv4_checksum(header: bytes) -> int:
    """RFC 791 header checksum: ones' complement of the ones' complement sum."""
    words: tuple[int, ...] = struct.unpack(f"!{len(header) // 2}H", header)
    total = sum(words)
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


@dataclass(frozen=True)
class Frame:
    data: bytes
    ipv4_offset: int
    udp_offset: int


def build_frame(
    l2_bytes: int,
    *,
    src_mac: str,
    dst_mac: str,
    src_ip: int,
    dst_ip: int,
    src_port: int,
    vlan: int | None = None,
) -> Frame:
    """Ethernet (+802.1Q) / IPv4 / UDP padded to `l2_bytes` less the FCS."""
    l2_header = mac_bytes(dst_mac) + mac_bytes(src_mac)
    if vlan is not None:
        l2_header += struct.pack("!HH", 0x8100, vlan & 0x0FFF)
    l2_header += struct.pack("!H", 0x0800)
    ip_total = l2_bytes - FCS_BYTES - len(l2_header)
    if ip_total < IPV4_HEADER_BYTES + UDP_HEADER_BYTES:
        raise StreamError(f"frame size {l2_bytes} B is too small for IPv4/UDP")
    header = struct.pack("!BBHHHBBHII", 0x45, 0, ip_total, 0, 0, 64, 17, 0, src_ip, dst_ip)
    header = header[:10] + struct.pack("!H", ipv4_checksum(header)) + header[12:]
    udp_length = ip_total - IPV4_HEADER_BYTES
    # a zero UDP checksum means "none" over IPv4 (RFC 768), so flows need no fix-up
    udp = struct.pack("!HHHH", src_port, UDP_DST_PORT, udp_length, 0)
    payload = bytes(udp_length - UDP_HEADER_BYTES)
    ipv4_offset = len(l2_header)
    return Frame(l2_header + header + udp + payload, ipv4_offset, ipv4_offset + 20)


def port_values_for(flows: int) -> int:
    """The largest divisor of `flows` that fits the UDP source port range we use."""
    for p in range(min(flows, MAX_PORT_VALUES), 0, -1):
        if flows % p == 0:
            return p
    return 1


def flow_vars(frame: Frame, src_ip: int, flows: int) -> tuple[FieldVar, ...]:
    if flows <= 1:
        return ()
    ports = port_values_for(flows)
    out = [FieldVar("src_ip", frame.ipv4_offset + 12, 4, src_ip, src_ip + flows - 1)]
    if ports > 1:
        base = UDP_SRC_PORT_BASE
        out.append(FieldVar("src_port", frame.udp_offset, 2, base, base + ports - 1))
    return tuple(out)


# --- plans -------------------------------------------------------------------------


def _sizes(spec: StreamSpec) -> list[tuple[int, float]]:
    if isinstance(spec.frame_size, FrameMix):
        total = sum(spec.frame_size.weights)
        return [
            (size, weight / total)
            for size, weight in zip(
                spec.frame_size.sizes_bytes, spec.frame_size.weights, strict=True
            )
        ]
    return [(spec.frame_size, 1.0)]


def build_plan(
    spec: StreamSpec,
    port_macs: Mapping[int, str],
    targets: Sequence[PortTarget] | None = None,
) -> StreamPlan:
    """The streams of a trial with `spec`; `port_macs` are the generator's own MACs."""
    by_port = {t.port_id: t for t in (spec.targets if targets is None else targets)}
    streams: list[PlannedStream] = []
    latency_pg: dict[str, int] = {}
    for lane_index, (tx, rx) in enumerate(spec.direction.lanes):
        if tx not in port_macs or rx not in port_macs:
            raise StreamError(f"the generator has no port {tx if tx not in port_macs else rx}")
        target = by_port.get(tx, PortTarget(tx))
        groups = _groups(spec, tx, target, port_macs)
        src_base, dst_ip = ADDRESS_BLOCKS.get(tx, (0x0A000001 + (tx << 16), 0x0B000001))
        for g, (dst_mac, flows, share) in enumerate(groups):
            src_ip = src_base + g * spec.flows
            for size, weight in _sizes(spec):
                frame = build_frame(
                    size,
                    src_mac=port_macs[tx],
                    dst_mac=dst_mac,
                    src_ip=src_ip,
                    dst_ip=dst_ip,
                    src_port=UDP_SRC_PORT_BASE,
                    vlan=target.vlan,
                )
                streams.append(
                    PlannedStream(
                        name=f"load-{tx}to{rx}-g{g}-{size}B",
                        tx_port=tx,
                        rx_port=rx,
                        frame_l2_bytes=size,
                        packet_hex=frame.data.hex(),
                        rate_fraction=share * weight,
                        flow_vars=flow_vars(frame, src_ip, flows),
                        ipv4_offset=frame.ipv4_offset,
                    )
                )
        if spec.latency_rate_pps > 0:
            pg_id = LATENCY_PG_BASE + lane_index
            dst_mac = groups[0][0]
            frame = build_frame(
                spec.frame_size if isinstance(spec.frame_size, int) else 64,
                src_mac=port_macs[tx],
                dst_mac=dst_mac,
                src_ip=src_base - 1,
                dst_ip=dst_ip,
                src_port=UDP_SRC_PORT_BASE - 1,
                vlan=target.vlan,
            )
            streams.append(
                PlannedStream(
                    name=f"latency-{tx}to{rx}",
                    tx_port=tx,
                    rx_port=rx,
                    frame_l2_bytes=len(frame.data) + FCS_BYTES,
                    packet_hex=frame.data.hex(),
                    rate_fraction=0.0,
                    fixed_pps=spec.latency_rate_pps,
                    pg_id=pg_id,
                )
            )
            latency_pg[f"{tx}->{rx}"] = pg_id
    return StreamPlan(tuple(streams), spec.direction.lanes, latency_pg)


def _groups(
    spec: StreamSpec, tx: int, target: PortTarget, port_macs: Mapping[int, str]
) -> list[tuple[str, int, float]]:
    """(destination MAC, flows, share of the lane's load) per stream group of a port."""
    replicas = tuple(spec.replica_macs.get(tx, ()))
    if not replicas:
        return [(target.dst_mac or BROADCAST_MAC, spec.flows, 1.0)]
    if spec.flows < len(replicas):
        raise StreamError(
            f"{spec.flows} flows cannot reach {len(replicas)} replicas on port {tx}: "
            "give at least one flow per replica"
        )
    base, extra = divmod(spec.flows, len(replicas))
    groups = []
    for i, mac in enumerate(replicas):
        flows = base + (1 if i < extra else 0)
        groups.append((mac, flows, flows / spec.flows))
    return groups


# --- per-replica steering from Multus ----------------------------------------------

NETWORK_STATUS_ANNOTATION = "k8s.v1.cni.cncf.io/network-status"


def replica_macs_from_network_status(
    pod_annotations: Iterable[Mapping[str, str]],
    port_networks: Mapping[int, str],
) -> dict[int, tuple[str, ...]]:
    """Per generator port, the MAC of each ready replica's interface facing it.

    `pod_annotations` holds each ready pod's annotations; `port_networks` maps a
    generator port to the Multus network name (``ns/name`` or ``name``) or the pod
    interface name that faces it.  Pods are taken in the order given.
    """
    out: dict[int, list[str]] = {port: [] for port in port_networks}
    for index, pod in enumerate(pod_annotations):
        raw = pod.get(NETWORK_STATUS_ANNOTATION)
        if raw is None:
            raise StreamError(f"pod {index}: no {NETWORK_STATUS_ANNOTATION} annotation")
        try:
            entries = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise StreamError(f"pod {index}: {NETWORK_STATUS_ANNOTATION} is not JSON") from exc
        if not isinstance(entries, list):
            raise StreamError(f"pod {index}: {NETWORK_STATUS_ANNOTATION} is not a list")
        for port, network in port_networks.items():
            out[port].append(_mac_on(entries, network, index))
    return {port: tuple(macs) for port, macs in out.items()}


def _mac_on(entries: list[Any], network: str, index: int) -> str:
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        name = str(entry.get("name", ""))
        matches = network in (name, name.rsplit("/", 1)[-1], entry.get("interface"))
        if matches and entry.get("mac"):
            mac = str(entry["mac"]).lower()
            mac_bytes(mac)
            return mac
    raise StreamError(f"pod {index}: network-status has no interface with a MAC on {network!r}")
