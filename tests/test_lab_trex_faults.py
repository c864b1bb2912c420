"""What the real TRex clients see when versions mismatch or faults are injected.

Clients run in their own process session (see test_lab_trex_clients); the servers run
in this process so the test can inject faults while a client works.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from typing import Any

import pytest

from lab.clock import VirtualClock
from lab.dataplane import DataPlane, load_vendor
from lab.trex import TRexServer

IMPORTS = {
    "legacy": "from trex_stl_lib.api import *\nError = STLError\nQUIET = LoggerApi.VERBOSE_QUIET",
    "current": "import lbr_trex_client\nfrom trex.stl.api import *\nError = TRexError\n"
    'QUIET = "error"',
}

CONNECT = """
import json, sys, time
{imports}
c = STLClient(server="127.0.0.1", sync_port=int(sys.argv[1]), async_port=int(sys.argv[2]),
              verbose_level=QUIET{options})
try:
    c.connect()
except Error as exc:
    print(json.dumps({{"error": exc.msg}}))
    sys.exit(3)
"""

TRIAL = """
c.reset(ports=[0, 1])
pkt = STLPktBuilder(pkt=Ether() / IP() / UDP() / (18 * "x"))
c.add_streams([STLStream(packet=pkt, mode=STLTXCont(pps=1000))], ports=[0])
try:
    c.start(ports=[0], mult="1000pps", duration=float(sys.argv[3]))
    print("started", flush=True)
    deadline = time.time() + 20
    while time.time() < deadline:
        c.get_stats()
        time.sleep(0.05)
    print(json.dumps({{"error": None}}))
except Error as exc:
    print(json.dumps({{"error": exc.msg}}))
    sys.exit(3)
"""


def make_server(api: str = "auto") -> TRexServer:
    dataplane = DataPlane(load_vendor("vpp-router"), 1, noise=False)
    dataplane.set_replicas(1, at_s=-1e6)
    server = TRexServer(dataplane, VirtualClock(200.0), api=api)
    server.start()
    return server


@pytest.fixture
def server() -> Iterator[TRexServer]:
    srv = make_server()
    yield srv
    srv.stop()


def client_process(
    client: str, server: TRexServer, body: str, *args: str, options: str = ""
) -> subprocess.Popen[str]:
    script = textwrap.dedent(CONNECT + body).format(imports=IMPORTS[client], options=options)
    argv = [sys.executable, "-c", script, str(server.sync_port), str(server.async_port), *args]
    return subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )


def outcome(process: subprocess.Popen[str]) -> tuple[int, dict[str, Any]]:
    out, err = process.communicate(timeout=60)
    lines = [line for line in out.splitlines() if line.startswith("{")]
    assert lines, f"no result (rc {process.returncode}): {err[-2000:]}"
    result: dict[str, Any] = json.loads(lines[-1])
    return process.returncode, result


@pytest.mark.parametrize(
    ("client", "release", "message"),
    [
        ("legacy", "v3.04", "not supported"),
        ("current", "v2.87", "mismatch"),
    ],
)
def test_a_client_of_the_other_generation_is_refused(
    client: str, release: str, message: str
) -> None:
    server = make_server(release)
    try:
        rc, result = outcome(client_process(client, server, ""))
    finally:
        server.stop()
    assert rc == 3
    assert message in result["error"]


@pytest.mark.parametrize("client", ["legacy", "current"])
def test_a_failed_start_reaches_the_client(client: str, server: TRexServer) -> None:
    with server.lock:
        server.faults.fail["start_traffic"] = ("injected: port fault", -32000, 1)
    rc, result = outcome(client_process(client, server, TRIAL, "10"))
    assert rc == 3
    assert "injected: port fault" in result["error"]
    assert not any(p["transmitting"] for p in server.snapshot()["ports"])


def test_connection_dropped_mid_trial(server: TRexServer) -> None:
    # A short RPC timeout (the current client retries three times) keeps this test quick.
    process = client_process("current", server, TRIAL, "100000", options=", sync_timeout=0.5")
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "started"
    with server.lock:
        server.faults.drop_for_s = 0.5
    rc, result = outcome(process)
    assert rc == 3
    assert "Failed to get server response" in result["error"] or "timeout" in result["error"]
    # As on a real TRex, the traffic outlives the client; a new owner can stop it.
    assert server.snapshot()["ports"][0]["transmitting"] is True
    rescue = client_process("current", server, "c.reset(ports=[0, 1])\nc.disconnect()\n")
    rescue.communicate(timeout=60)
    assert rescue.returncode == 0
    deadline = time.monotonic() + 5
    while server.snapshot()["ports"][0]["transmitting"]:
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_try_again_trips_the_current_client(server: TRexServer) -> None:
    # On -32001 "try again" the v3.04 client means to repeat the request, but its retry
    # path passes an argument twice and raises TypeError: a driver must survive that as
    # a generator error.  The lab answers as TRex does and the trap stays visible.
    with server.lock:
        server.faults.fail["start_traffic"] = ("busy", -32001, 1)
    process = client_process("current", server, TRIAL, "10")
    _, err = process.communicate(timeout=60)
    assert process.returncode == 1
    assert "got multiple values for argument 'retry'" in err
