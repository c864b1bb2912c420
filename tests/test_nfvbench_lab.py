"""The NFVBench driver against the lab supervisor's NFVBench-compatible service, found
through state.json, with the ground truth from the lab's control channel."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from traffic.model import Direction, StreamSpec
from traffic.nfvbench import NfvbenchConfig, NfvbenchGenerator


@pytest.fixture
def lab_state(tmp_path: Path) -> Iterator[dict[str, Any]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "lab", "up", "--state-dir", str(tmp_path), "--vendor",
         "stateful-firewall", "--replicas", "2", "--no-noise", "--time-scale", "1000"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    state_file = tmp_path / "state.json"
    deadline = time.monotonic() + 60
    while not state_file.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            _, err = proc.communicate()
            pytest.fail(f"lab did not come up: {err.decode()[-2000:]}")
        time.sleep(0.1)
    try:
        yield json.loads(state_file.read_text())
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def truth(state: dict[str, Any], **query: Any) -> float:
    url = state["control"]["url"] + "/ground-truth?" + urllib.parse.urlencode(query)
    with urllib.request.urlopen(url, timeout=10) as reply:
        return float(json.loads(reply.read())["pps"])


def test_supervisor_publishes_nfvbench_and_its_search_matches_the_truth(
    lab_state: dict[str, Any],
) -> None:
    assert lab_state["nfvbench"]["url"].startswith("http://127.0.0.1:")
    gen = NfvbenchGenerator(NfvbenchConfig(lab_state["nfvbench"]["url"], {0: 25e9, 1: 25e9}))
    gen.open()
    streams = StreamSpec(64, 1000, Direction.BIDIRECTIONAL)
    result = gen.search_ndr_pdr(streams, duration_s=10.0, load_epsilon_pct=0.1)
    line = streams.max_load_pps(25e9)
    for outcome in result.goals:
        expected = truth(
            lab_state, frame_size=64, flows=1000, replicas=2, loss_ratio=outcome.goal.loss_ratio
        )
        assert outcome.lower_bound_pps is not None
        assert expected - 0.001 * line <= outcome.lower_bound_pps <= expected
