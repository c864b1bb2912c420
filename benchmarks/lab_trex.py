"""How fast the lab's TRex-compatible server is.

Prints RPC round trips per second (plain, compressed, and a stats read), and the wall
time of a 60 s bidirectional trial with 1000 flows and a latency stream at the default
time scale, driven over raw RPC and by the real current TRex client in a subprocess.
Target: a 60 s trial in well under 1 s of wall time.

    python benchmarks/lab_trex.py [--time-scale 200] [--round-trips 3000]
"""

from __future__ import annotations

import argparse
import base64
import json
import subprocess
import sys
import textwrap
import time
from typing import Any

import zmq

from lab.clock import VirtualClock
from lab.dataplane import DataPlane, load_vendor
from lab.trex import TRexServer
from lab.trex.wire import unzip, zip_message

TRIAL_S = 60.0
TARGET_WALL_S = 1.0
PACKET = bytes.fromhex("02fc0000000502fc000000010800") + bytes(46)


class Rpc:
    def __init__(self, port: int, zipped: bool = False) -> None:
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.REQ)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.RCVTIMEO, 10_000)
        self.sock.connect(f"tcp://127.0.0.1:{port}")
        self.zipped = zipped
        self.api_h = ""
        self.api_h = self.call("api_sync_v2", name="STL", major=5, minor=1)["api_h"]

    def call(self, method: str, **params: Any) -> Any:
        params["api_h"] = self.api_h
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
        self.sock.send(zip_message(body.encode()) if self.zipped else body.encode())
        reply = self.sock.recv()
        answer = json.loads(unzip(reply) if self.zipped else reply)
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        return answer["result"]

    def close(self) -> None:
        self.sock.close(linger=0)
        self.ctx.term()


def round_trips_per_s(port: int, method: str, count: int, zipped: bool, **params: Any) -> float:
    rpc = Rpc(port, zipped)
    try:
        start = time.perf_counter()
        for _ in range(count):
            rpc.call(method, **params)
        return count / (time.perf_counter() - start)
    finally:
        rpc.close()


def stream(pps: float, pg_id: int, latency: bool, flows: int) -> dict[str, Any]:
    vm = (
        [
            {
                "type": "flow_var",
                "name": "s",
                "size": 2,
                "op": "inc",
                "init_value": 1,
                "min_value": 1,
                "max_value": flows,
                "step": 1,
            }
        ]
        if flows > 1
        else []
    )
    return {
        "enabled": True,
        "self_start": True,
        "isg": 0,
        "flags": 0,
        "mode": {"type": "continuous", "rate": {"type": "pps", "value": pps}},
        "packet": {"binary": base64.b64encode(PACKET).decode(), "meta": ""},
        "vm": {"instructions": vm, "split_by_var": ""},
        "flow_stats": {
            "enabled": True,
            "stream_id": pg_id,
            "rule_type": "latency" if latency else "stats",
        },
    }


def raw_trial_wall_s(port: int, load_pps: float) -> tuple[float, int]:
    """Wall seconds from the first start to the end of a 60 s trial, and RPCs sent."""
    rpc = Rpc(port)
    calls = 0
    try:
        handlers = [
            rpc.call("acquire", port_id=p, user="bench", session_id=1, force=True) for p in (0, 1)
        ]
        for p in (0, 1):
            rpc.call("remove_all_streams", handler=handlers[p], port_id=p)
            rpc.call(
                "add_stream",
                handler=handlers[p],
                port_id=p,
                stream_id=1,
                stream=stream(1.0, 10 + p, False, 1000),
            )
        rpc.call(
            "add_stream",
            handler=handlers[0],
            port_id=0,
            stream_id=2,
            stream=stream(1000.0, 20, True, 1),
        )
        mul = {"type": "pps", "value": load_pps, "op": "abs"}
        start = time.perf_counter()
        for p in (0, 1):
            rpc.call(
                "start_traffic",
                handler=handlers[p],
                port_id=p,
                mul=mul,
                duration=TRIAL_S,
                force=False,
            )
        while any(rpc.call("get_port_status", port_id=p)["state"] == "TX" for p in (0, 1)):
            calls += 2
            time.sleep(0.005)
        wall = time.perf_counter() - start
        stats = rpc.call("get_port_stats", port_id=0)
        assert stats["opackets"] == round(load_pps * TRIAL_S) + round(1000 * TRIAL_S)
        for p in (0, 1):
            rpc.call("release", handler=handlers[p], port_id=p)
        return wall, calls
    finally:
        rpc.close()


CLIENT_SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    import lbr_trex_client
    from trex.stl.api import *
    sync, asyn, pps, duration = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), \\
        float(sys.argv[4])
    c = STLClient(server="127.0.0.1", sync_port=sync, async_port=asyn, verbose_level="error")
    c.connect()
    c.reset(ports=[0, 1])
    vm = STLScVmRaw([STLVmFlowVar(name="s", min_value=1025, max_value=2024, size=2, op="inc"),
                     STLVmWrFlowVar(fv_name="s", pkt_offset=34)])
    base = Ether() / IP() / UDP() / (18 * "x")
    load = STLStream(packet=STLPktBuilder(pkt=base, vm=vm), mode=STLTXCont(pps=1))
    lat = STLStream(packet=STLPktBuilder(pkt=base), mode=STLTXCont(pps=1000),
                    flow_stats=STLFlowLatencyStats(pg_id=5))
    c.add_streams([load, lat], ports=[0])
    c.add_streams([load], ports=[1])
    start = time.perf_counter()
    c.start(ports=[0, 1], mult="%fpps" % pps, duration=duration)
    c.wait_on_traffic(ports=[0, 1])
    stats = c.get_stats()
    wall = time.perf_counter() - start
    c.release(ports=[0, 1])
    c.disconnect()
    print(json.dumps({"wall_s": wall, "opackets": stats[0]["opackets"]}))
    """
)


def client_trial_wall_s(server: TRexServer, load_pps: float) -> float:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            CLIENT_SCRIPT,
            str(server.sync_port),
            str(server.async_port),
            str(load_pps),
            str(TRIAL_S),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        start_new_session=True,
        check=True,
    )
    wall_s: float = json.loads(done.stdout.strip().splitlines()[-1])["wall_s"]
    return wall_s


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time-scale", type=float, default=200.0)
    parser.add_argument("--round-trips", type=int, default=3000)
    args = parser.parse_args()

    dataplane = DataPlane(load_vendor("vpp-router"), 1)
    dataplane.set_replicas(2, at_s=-1e6)
    server = TRexServer(dataplane, VirtualClock(args.time_scale))
    server.start()
    try:
        n = args.round_trips
        ping = round_trips_per_s(server.sync_port, "ping", n, zipped=False)
        ping_zip = round_trips_per_s(server.sync_port, "ping", n, zipped=True)
        stats = round_trips_per_s(server.sync_port, "get_port_stats", n // 3, False, port_id=0)
        load_pps = 0.45 * dataplane.ground_truth(64, 1000, 2, True)
        raw_wall, polls = raw_trial_wall_s(server.sync_port, load_pps)
        client_wall = client_trial_wall_s(server, load_pps)
    finally:
        server.stop()

    print(f"RPC round trips per second (ping, plain):       {ping:10.0f}")
    print(f"RPC round trips per second (ping, zipmsg):      {ping_zip:10.0f}")
    print(f"RPC round trips per second (get_port_stats):    {stats:10.0f}")
    print(f"time scale:                                     {args.time_scale:10g}")
    print(
        f"60 s trial, raw RPC, wall time:                 {raw_wall:10.3f} s "
        f"({polls} status polls)"
    )
    print(f"60 s trial, trex.stl client, wall time:         {client_wall:10.3f} s")
    print(f"ideal wall time (60 s / time scale):            {TRIAL_S / args.time_scale:10.3f} s")
    worst = max(raw_wall, client_wall)
    ratio = worst / TARGET_WALL_S
    print(f"worst trial wall time / target ({TARGET_WALL_S:g} s):          {ratio:10.2f}")
    return 0 if worst < TARGET_WALL_S else 1


if __name__ == "__main__":
    sys.exit(main())
