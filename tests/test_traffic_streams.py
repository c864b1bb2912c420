"""Stream plans: frames checked with scapy, flows, IMIX, steering, and both TRex client
libraries compiling the plan in a worker-like subprocess."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Dot1Q, Ether

from traffic.errors import StreamError
from traffic.model import Direction, PortTarget, StreamSpec
from traffic.streams import (
    NETWORK_STATUS_ANNOTATION,
    build_frame,
    build_plan,
    replica_macs_from_network_status,
)
from traffic.units import IMIX_NFVBENCH

MACS = {0: "02:00:00:00:00:01", 1: "02:00:00:00:00:02"}


@pytest.mark.parametrize("size", [64, 128, 1518, 9000])
@pytest.mark.parametrize("vlan", [None, 101])
def test_frames_are_valid_ipv4_udp_of_the_l2_size_less_fcs(size: int, vlan: int | None) -> None:
    frame = build_frame(
        size,
        src_mac=MACS[0],
        dst_mac="3c:fd:fe:a0:00:10",
        src_ip=0x10000001,
        dst_ip=0x30000001,
        src_port=1024,
        vlan=vlan,
    )
    assert len(frame.data) == size - 4
    parsed = Ether(frame.data)
    assert parsed.dst == "3c:fd:fe:a0:00:10" and parsed.src == MACS[0]
    if vlan is not None:
        assert parsed[Dot1Q].vlan == vlan
    ip = parsed[IP]
    assert (ip.src, ip.dst, ip.ttl) == ("16.0.0.1", "48.0.0.1", 64)
    recomputed = IP(bytes(ip))
    del recomputed.chksum
    assert IP(bytes(recomputed)).chksum == ip.chksum
    assert (
        parsed[UDP].sport == 1024
        and frame.data[frame.udp_offset : frame.udp_offset + 2] == b"\x04\x00"
    )
    assert frame.data[frame.ipv4_offset + 12 : frame.ipv4_offset + 16] == bytes([16, 0, 0, 1])


def test_frame_size_too_small_for_headers_is_an_error() -> None:
    with pytest.raises(StreamError, match="too small"):
        build_frame(40, src_mac=MACS[0], dst_mac=MACS[1], src_ip=1, dst_ip=2, src_port=1)
    with pytest.raises(StreamError, match="MAC"):
        build_frame(64, src_mac="02:00", dst_mac=MACS[1], src_ip=1, dst_ip=2, src_port=1)


@pytest.mark.parametrize("flows", [1, 7, 1000, 65536, 100_003])
def test_flow_variables_cycle_through_exactly_the_flow_count(flows: int) -> None:
    plan = build_plan(StreamSpec(64, flows, Direction.UNIDIRECTIONAL), MACS)
    (stream,) = plan.streams
    spans = [v.max_value - v.min_value + 1 for v in stream.flow_vars]
    if flows == 1:
        assert spans == []
        return
    # both variables increment per packet: distinct tuples = lcm of their spans
    tuples = {
        tuple(v.min_value + k % span for v, span in zip(stream.flow_vars, spans, strict=True))
        for k in range(2 * flows)
    }
    assert len(tuples) == flows
    assert stream.flow_vars[0].offset == stream.ipv4_offset + 12  # IPv4 source


def test_imix_bidirectional_plan_with_latency_and_vlan_targets() -> None:
    spec = StreamSpec(
        IMIX_NFVBENCH,
        1000,
        Direction.BIDIRECTIONAL,
        latency_rate_pps=500.0,
        targets=(PortTarget(0, "3c:fd:fe:a0:00:10", 100), PortTarget(1, "3c:fd:fe:a0:00:11", 101)),
    )
    plan = build_plan(spec, MACS)
    assert plan.lanes == ((0, 1), (1, 0)) and plan.ports == (0, 1)
    load = [s for s in plan.streams if not s.latency]
    latency = [s for s in plan.streams if s.latency]
    assert sorted(s.frame_l2_bytes for s in load if s.tx_port == 0) == [64, 594, 1518]
    shares = {s.frame_l2_bytes: s.rate_fraction for s in load if s.tx_port == 0}
    assert shares == pytest.approx({64: 7 / 12, 594: 4 / 12, 1518: 1 / 12})
    assert {s.pg_id for s in latency} == set(plan.latency_pg_ids.values()) and len(latency) == 2
    for s in plan.streams:
        parsed = Ether(s.packet())
        assert parsed[Dot1Q].vlan == (100 if s.tx_port == 0 else 101)
        assert parsed.dst == ("3c:fd:fe:a0:00:10" if s.tx_port == 0 else "3c:fd:fe:a0:00:11")
    rated = plan.rated(1e6)
    assert sum(
        r["pps"] for r in rated if r["tx_port"] == 0 and r["fixed_pps"] is None
    ) == pytest.approx(1e6)
    assert [r["pps"] for r in rated if r["fixed_pps"] is not None] == [500.0, 500.0]


def test_per_replica_stream_groups_split_flows_and_load() -> None:
    replicas = ("02:aa:00:00:00:01", "02:aa:00:00:00:02", "02:aa:00:00:00:03")
    spec = StreamSpec(64, 10, Direction.UNIDIRECTIONAL, replica_macs={0: replicas})
    plan = build_plan(spec, MACS)
    assert [Ether(s.packet()).dst for s in plan.streams] == list(replicas)
    assert [s.rate_fraction for s in plan.streams] == pytest.approx([0.4, 0.3, 0.3])
    sources = [(s.flow_vars[0].min_value, s.flow_vars[0].max_value) for s in plan.streams]
    assert all(a[1] < b[0] for a, b in itertools.pairwise(sources))  # disjoint
    with pytest.raises(StreamError, match="at least one flow per replica"):
        build_plan(StreamSpec(64, 2, Direction.UNIDIRECTIONAL, replica_macs={0: replicas}), MACS)


def test_replica_macs_from_multus_network_status() -> None:
    def pod(mac0: str, mac1: str) -> dict[str, str]:
        status = [
            {"name": "cilium", "interface": "eth0", "ips": ["10.0.0.5"], "default": True},
            {"name": "cnf/sriov-left", "interface": "net1", "mac": mac0},
            {"name": "cnf/sriov-right", "interface": "net2", "mac": mac1},
        ]
        return {NETWORK_STATUS_ANNOTATION: json.dumps(status)}

    pods = [
        pod("02:00:00:00:0a:01", "02:00:00:00:0b:01"),
        pod("02:00:00:00:0A:02", "02:00:00:00:0b:02"),
    ]
    macs = replica_macs_from_network_status(pods, {0: "sriov-left", 1: "net2"})
    assert macs == {
        0: ("02:00:00:00:0a:01", "02:00:00:00:0a:02"),
        1: ("02:00:00:00:0b:01", "02:00:00:00:0b:02"),
    }
    with pytest.raises(StreamError, match=r"pod 1: no k8s\.v1\.cni\.cncf\.io/network-status"):
        replica_macs_from_network_status([pods[0], {}], {0: "sriov-left"})
    with pytest.raises(StreamError, match="no interface with a MAC on 'other'"):
        replica_macs_from_network_status(pods, {0: "other"})


COMPILE = """
import json, sys
from traffic.trex.worker import Session, load_library
lib, source = load_library(sys.argv[1], None)
session = Session(lib, sys.argv[1], source)
out = [session._stream(body).to_json() for body in json.loads(sys.stdin.read())]
print(json.dumps(out))
"""


@pytest.mark.parametrize("client", ["current", "legacy"])
def test_both_client_libraries_compile_the_plan_with_numeric_offsets(client: str) -> None:
    spec = StreamSpec(IMIX_NFVBENCH, 1000, Direction.BIDIRECTIONAL, latency_rate_pps=1000.0)
    plan = build_plan(spec, MACS)
    bodies = plan.rated(2e6)
    proc = subprocess.run(
        [sys.executable, "-c", COMPILE, client],
        input=json.dumps(bodies),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    compiled = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(compiled) == len(plan.streams)
    for body, stream in zip(bodies, compiled, strict=True):
        assert stream["mode"]["rate"] == {"type": "pps", "value": pytest.approx(body["pps"])}
        writes = [i for i in stream["vm"]["instructions"] if i["type"] == "write_flow_var"]
        assert [w["pkt_offset"] for w in writes] == [v["offset"] for v in body["flow_vars"]]
        if body["pg_id"] is not None:
            assert stream["flow_stats"]["rule_type"] == "latency"
            assert stream["flow_stats"]["stream_id"] == body["pg_id"]
