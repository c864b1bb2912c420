"""The real TRex client libraries drive the lab's TRex-compatible server unmodified.

Each trial runs a client script in its own process and session: the legacy client's
async thread signals its process group on errors, and the current client's vendored
libraries would shadow ours.  The script connects, resets, adds a bidirectional UDP
stream pair with 1000 flows plus a latency stream, starts at a chosen rate for a
duration, waits, reads stats and releases; it prints what it read as JSON.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hdrh.histogram import HdrHistogram

from bench.labctl import LabHandle, start_lab

FLOWS = 1000
LATENCY_PPS = 1000
LATENCY_PG = 7
DURATION_S = 10.0

# The body shared by both client generations; {imports} differ.  Offsets are numeric
# (UDP source port at 34 after Ethernet and IPv4) because the legacy client's packet
# builder cannot resolve field names with the scapy release on PyPI.
SCRIPT = """
import json, sys
{imports}

sync_port, async_port, pps, duration = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), \\
    float(sys.argv[4])
client = STLClient(server="127.0.0.1", sync_port=sync_port, async_port=async_port,
                   verbose_level={verbose})


def udp(src, dst, pg_id, latency=False, pps=1.0):
    vm = STLScVmRaw([
        STLVmFlowVar(name="sport", min_value=1025, max_value=1025 + {flows} - 1, size=2, op="inc"),
        STLVmWrFlowVar(fv_name="sport", pkt_offset=34),
        STLVmFixIpv4(offset=14),
    ])
    base = Ether() / IP(src=src, dst=dst) / UDP(sport=1025, dport=12) / (18 * "x")
    packet = STLPktBuilder(pkt=base, vm=None if latency else vm)
    stats = STLFlowLatencyStats(pg_id=pg_id) if latency else STLFlowStats(pg_id=pg_id)
    return STLStream(packet=packet, mode=STLTXCont(pps=pps), flow_stats=stats)


client.connect()
try:
    client.reset(ports=[0, 1])
    client.add_streams([udp("16.0.0.1", "48.0.0.1", 1),
                        udp("16.0.0.2", "48.0.0.2", {pg}, latency=True, pps={lat_pps})], ports=[0])
    client.add_streams([udp("48.0.0.1", "16.0.0.1", 2)], ports=[1])
    client.get_stats()  # a baseline read before any latency sample exists
    client.clear_stats()
    client.start(ports=[0, 1], mult="%fpps" % pps, duration=duration)
    client.wait_on_traffic(ports=[0, 1])
    stats = client.get_stats()
    raw = client._transmit("get_pgid_stats", params={{"pgids": [{pg}]}}).data()
    client.release(ports=[0, 1])
finally:
    client.disconnect()

lat = stats["latency"][{pg}]["latency"]
print(json.dumps({{
    "ports": {{str(p): {{k: stats[p][k] for k in ("opackets", "ipackets")}} for p in (0, 1)}},
    "flow": {{str(pg): {{k: stats["flow_stats"][pg][k]["total"] for k in ("tx_pkts", "rx_pkts")}}
             for pg in (1, 2, {pg})}},
    "latency": {{k: lat[k] for k in ("total_min", "average", "total_max")}},
    "histogram": {{str(k): v for k, v in lat["histogram"].items()}},
    "hdrh": raw["latency"][str({pg})]["lat"]["hdrh"],
    "hdrh_in_stats": lat.get("hdrh"),
}}))
"""

CLIENTS = {
    "legacy": {
        "imports": "from trex_stl_lib.api import *",
        "verbose": "LoggerApi.VERBOSE_QUIET",
    },
    "current": {
        "imports": "import lbr_trex_client\nfrom trex.stl.api import *",
        "verbose": '"error"',
    },
}


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabHandle]:
    state_dir = tmp_path_factory.mktemp("lab")
    with start_lab(state_dir, seed=3, vendor="vpp-router", replicas=1) as handle:
        yield handle
    assert not handle.alive()


def run_trial(lab: LabHandle, client: str, tmp_path: Path, pps: float) -> dict[str, Any]:
    """Run the client script for one bidirectional trial at `pps` per direction."""
    script = tmp_path / f"{client}_trial.py"
    script.write_text(
        SCRIPT.format(flows=FLOWS, pg=LATENCY_PG, lat_pps=LATENCY_PPS, **CLIENTS[client]),
        encoding="utf-8",
    )
    ep = lab.endpoints
    argv = [sys.executable, str(script), str(ep.trex_sync_port), str(ep.trex_async_port)]
    done = subprocess.run(
        [*argv, str(pps), str(DURATION_S)],
        capture_output=True,
        text=True,
        timeout=120,
        start_new_session=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def truth(lab: LabHandle, noise: bool) -> float:
    trial = lab.control("/trial")["trial"]
    query = (
        f"/ground-truth?frame_size=64&flows={FLOWS}&replicas=1&bidirectional=1&noise={int(noise)}"
    )
    pps: float = lab.control(f"{query}&trial={trial}")["pps"]
    return pps


def check_common(result: dict[str, Any], pps: float) -> tuple[int, int]:
    """tx = rate x duration on both ports; returns (offered, forwarded) of the load."""
    load_tx = round(pps * DURATION_S)
    lat_tx = round(LATENCY_PPS * DURATION_S)
    assert result["ports"]["0"]["opackets"] == load_tx + lat_tx
    assert result["ports"]["1"]["opackets"] == load_tx
    flow = result["flow"]
    assert flow["1"]["tx_pkts"] == flow["2"]["tx_pkts"] == load_tx
    assert flow[str(LATENCY_PG)]["tx_pkts"] == lat_tx
    # Port and pg_id counters agree: port 1 receives stream 1 and the latency stream.
    assert result["ports"]["1"]["ipackets"] == flow["1"]["rx_pkts"] + flow["7"]["rx_pkts"]
    assert result["ports"]["0"]["ipackets"] == flow["2"]["rx_pkts"]

    lat = result["latency"]
    assert 0 < lat["total_min"] <= lat["average"] <= lat["total_max"]
    histogram = HdrHistogram.decode(result["hdrh"])
    assert histogram.get_total_count() == flow[str(LATENCY_PG)]["rx_pkts"]
    # The clients build total_max from the last_max of each poll; it cannot exceed the max.
    assert histogram.get_value_at_percentile(50) <= lat["total_max"] <= histogram.get_max_value()
    assert sum(result["histogram"].values()) == histogram.get_total_count()
    offered = 2 * load_tx
    return offered, flow["1"]["rx_pkts"] + flow["2"]["rx_pkts"]


@pytest.mark.parametrize("client", ["legacy", "current"])
def test_no_loss_below_the_true_ndr(lab: LabHandle, client: str, tmp_path: Path) -> None:
    clean_ndr = truth(lab, noise=False)
    pps = 0.9 * clean_ndr / 2
    result = run_trial(lab, client, tmp_path, pps)
    offered, forwarded = check_common(result, pps)
    assert truth(lab, noise=True) > 2 * pps + LATENCY_PPS  # the trial's own capacity
    assert forwarded == offered
    assert result["flow"][str(LATENCY_PG)]["rx_pkts"] == LATENCY_PPS * DURATION_S
    if client == "current":
        assert result["hdrh_in_stats"] == result["hdrh"]  # the current client passes it on


@pytest.mark.parametrize("client", ["legacy", "current"])
def test_loss_above_the_ndr_follows_capacity(lab: LabHandle, client: str, tmp_path: Path) -> None:
    pps = 1.5 * truth(lab, noise=False) / 2
    result = run_trial(lab, client, tmp_path, pps)
    offered, forwarded = check_common(result, pps)
    capacity = truth(lab, noise=True)
    loss = 1 - forwarded / offered
    assert loss > 0.2
    assert loss == pytest.approx(1 - capacity / (2 * pps), abs=0.03)
    # Latency near saturation: the queue is full, so even the minimum is high.
    assert HdrHistogram.decode(result["hdrh"]).get_min_value() > 50
    if client == "current":  # the legacy client derives its minimum from the coarse histogram
        assert result["latency"]["total_min"] > 50


def test_nothing_left_running_after_the_clients(lab: LabHandle) -> None:
    ports = lab.control("/trex")["ports"]
    assert [p["transmitting"] for p in ports] == [False, False]
    assert [p["owned"] for p in ports] == [False, False]
