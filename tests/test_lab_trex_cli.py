"""``cnfbench lab up/status/down`` and `bench.labctl` against real lab processes.

The CLI runs in this process through `bench.cli.main` (the lab itself is always a
separate process); the foreground test runs the command group in a child process so
that it can be interrupted.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import zmq

from bench.cli import main
from bench.labctl import LabError, read_lab, start_lab, stop_lab

LAB_GROUP = [
    sys.executable,
    "-c",
    "from bench.commands.lab import lab_group; lab_group(prog_name='cnfbench lab')",
]


class Ran:
    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


@pytest.fixture
def cnfbench(capsys: pytest.CaptureFixture[str]) -> Any:
    def run(*args: str) -> Ran:
        code = main(list(args))
        out, err = capsys.readouterr()
        return Ran(code, out, err)

    return run


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def trex_version(state: dict[str, Any]) -> str:
    """Handshake and ask the version over the published TRex sync port."""
    ctx: zmq.Context[Any] = zmq.Context()
    sock = ctx.socket(zmq.REQ)
    sock.setsockopt(zmq.RCVTIMEO, 3000)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(f"tcp://127.0.0.1:{state['trex']['sync_port']}")
    try:
        sock.send_json({"jsonrpc": "2.0", "id": 1, "method": "get_version", "params": {}})
        reply: dict[str, Any] = sock.recv_json()  # type: ignore[assignment]
        return str(reply["result"]["version"])
    finally:
        sock.close(linger=0)
        ctx.term()


def test_up_status_down(tmp_path: Path, cnfbench: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # `up` without --state-dir uses the per-user default; the rest name it explicitly.
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    state_dir = tmp_path / "xdg" / "cnfbench" / "lab"
    up = cnfbench("lab", "up", "--detach", "--seed", "5", "--time-scale", "100", "--replicas", "2")
    assert up.returncode == 0, up.stderr
    published = json.loads(up.stdout)
    try:
        assert json.loads((state_dir / "state.json").read_text())["pid"] == published["pid"]
        assert (published["seed"], published["time_scale"]) == (5, 100.0)
        assert published["trex"]["host"] == "127.0.0.1"
        assert alive(published["pid"])
        assert trex_version(published) == "v3.04"

        status = cnfbench("lab", "status", "--json", "--state-dir", str(state_dir))
        assert status.returncode == 0, status.stderr
        shown = json.loads(status.stdout)
        assert shown["trex"]["sync_port"] == published["trex"]["sync_port"]
        assert shown["trex"]["async_port"] == published["trex"]["async_port"]
        assert shown["pid"] == published["pid"]

        again = cnfbench("lab", "up", "--detach", "--state-dir", str(state_dir))
        assert again.returncode == 1
        assert "already running" in again.stderr
        assert "Traceback" not in again.stderr
    finally:
        down = cnfbench("lab", "down")
    assert down.returncode == 0, down.stderr
    assert "lab stopped" in down.stdout
    assert not alive(published["pid"])
    assert not (state_dir / "state.json").exists()

    gone = cnfbench("lab", "status", "--json", "--state-dir", str(state_dir))
    assert gone.returncode == 1
    assert "no lab is running" in gone.stderr
    assert cnfbench("lab", "down").stdout.strip() == "no lab was running"


def test_bad_vendor_fails_cleanly(tmp_path: Path, cnfbench: Any) -> None:
    up = cnfbench("lab", "up", "--detach", "--state-dir", str(tmp_path), "--vendor", "nope")
    assert up.returncode == 1
    assert "unknown vendor model 'nope'" in up.stderr
    assert "Traceback" not in up.stderr
    assert not (tmp_path / "state.json").exists()


def _foreground_lab(state_dir: Path) -> subprocess.Popen[str]:
    """`cnfbench lab up` in the foreground, once its state file says it serves."""
    process = subprocess.Popen(
        [*LAB_GROUP, "up", "--state-dir", str(state_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while not (state_dir / "state.json").exists():
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.05)
    return process


def test_foreground_up_stops_the_lab_on_interrupt(tmp_path: Path) -> None:
    process = _foreground_lab(tmp_path)
    lab_pid = json.loads((tmp_path / "state.json").read_text())["pid"]
    try:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=30)
        assert not alive(lab_pid)
        assert not (tmp_path / "state.json").exists()
    finally:
        stop_lab(tmp_path)  # leave nothing running, whatever failed


def test_labctl_handle_and_control_channel(tmp_path: Path) -> None:
    with start_lab(tmp_path, seed=2, vendor="cgnat", replicas=1, noise=False) as lab:
        assert read_lab(tmp_path).trex_sync_port == lab.endpoints.trex_sync_port
        truth = lab.control("/ground-truth?frame_size=64&flows=1000&replicas=1&bidirectional=1")
        assert 2e6 < truth["pps"] < 4e6
        imix = lab.control("/ground-truth?frame_size=IMIX&flows=1000&replicas=1")
        assert imix["pps"] < truth["pps"]
        assert lab.control("/replicas", {"count": 3})["replicas"] == [
            "replica-0",
            "replica-1",
            "replica-2",
        ]
        assert len(lab.control("/status")["replicas"]) == 3
        assert lab.control("/faults", {"kind": "link", "port": 1, "up": False})
        assert lab.control("/trex")["ports"][1]["link_up"] is False
        with pytest.raises(LabError, match="unknown fault kind"):
            lab.control("/faults", {"kind": "meteor"})
        with pytest.raises(LabError, match="HTTP 404"):
            lab.control("/nowhere")
        with pytest.raises(LabError, match="already running"):
            start_lab(tmp_path)
        pid = lab.endpoints.pid
    assert not alive(pid)
    assert stop_lab(tmp_path) is False


def test_foreground_up_fails_when_the_lab_dies(tmp_path: Path) -> None:
    process = _foreground_lab(tmp_path)
    os.kill(json.loads((tmp_path / "state.json").read_text())["pid"], signal.SIGKILL)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 1
    assert "exited by itself" in err
    assert not (tmp_path / "state.json").exists()  # stale state is cleared
