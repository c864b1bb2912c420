"""The NFVBench driver over HTTP against the lab's NFVBench-compatible server."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator

import pytest

from lab.clock import VirtualClock
from lab.dataplane import DataPlane, load_vendor
from lab.nfvbench_server import NfvbenchServer
from traffic.errors import GeneratorError
from traffic.model import Direction, StreamSpec, TrialSpec
from traffic.nfvbench import NfvbenchConfig, NfvbenchGenerator
from traffic.trial import TrialRunner

STREAMS = StreamSpec(64, 1024, Direction.BIDIRECTIONAL)


@pytest.fixture
def lab() -> Iterator[tuple[NfvbenchServer, DataPlane]]:
    plane = DataPlane(load_vendor("stateful-firewall"), seed=2, noise=False)
    plane.set_replicas(2, at_s=-1e9)
    server = NfvbenchServer(plane, VirtualClock(1000.0))
    server.start()
    yield server, plane
    server.stop()


def generator(server: NfvbenchServer) -> NfvbenchGenerator:
    gen = NfvbenchGenerator(NfvbenchConfig(server.url, {0: 25e9, 1: 25e9}, poll_interval_s=0.01))
    gen.open()
    return gen


def test_fixed_rate_trial_maps_counts_and_latency(lab: tuple[NfvbenchServer, DataPlane]) -> None:
    server, plane = lab
    ndr = plane.ground_truth(64, 1024, 2, True)
    gen = generator(server)
    light_pps = float(round(0.5 * ndr))
    light = gen.run_trial(TrialSpec(STREAMS, light_pps, 10.0))
    assert light.valid, light.invalid_reason
    assert [lane.label for lane in light.lanes] == ["0->1", "1->0"]
    assert light.offered_count == round(light_pps * 10.0)
    assert light.loss_ratio == 0.0
    assert set(light.latency) == {"0->1", "1->0"}
    assert all(0 < s.p50_us <= s.p99_us <= s.max_us for s in light.latency.values())
    heavy = gen.run_trial(TrialSpec(STREAMS, 1.5 * ndr, 10.0))
    assert heavy.valid and heavy.loss_ratio > 0.2


def test_ndr_pdr_search_of_nfvbench_is_mapped_into_a_search_result(
    lab: tuple[NfvbenchServer, DataPlane],
) -> None:
    server, plane = lab
    result = generator(server).search_ndr_pdr(STREAMS, duration_s=10.0, load_epsilon_pct=0.1)
    assert result.method == "nfvbench-binary"
    line = STREAMS.max_load_pps(25e9)
    for outcome in result.goals:
        truth = plane.ground_truth(64, 1024, 2, True, loss_ratio=outcome.goal.loss_ratio)
        assert outcome.lower_bound_pps is not None
        # NFVBench's epsilon is 0.1 % of line rate
        assert truth - 0.001 * line <= outcome.lower_bound_pps <= truth
    assert len(result.trials) == 2 and all(t.valid for t in result.trials)


def test_nfvbench_errors_are_errors_not_counts(lab: tuple[NfvbenchServer, DataPlane]) -> None:
    server, _ = lab
    gen = generator(server)
    imix = StreamSpec(64, 1, Direction.UNIDIRECTIONAL)
    with pytest.raises(GeneratorError, match="invalid frame size '63'"):
        gen._run({"frame_sizes": ["63"], "rate": "1Mpps"}, 1.0)
    with pytest.raises(GeneratorError, match="unknown config key 'bogus'"):
        gen._run({"bogus": 1}, 1.0)
    runner = TrialRunner(gen, imix, max_attempts=2, reconnect_pause_s=0.0)
    assert runner(1.0, 1e5).valid
    request = urllib.request.Request(server.url + "/status/run-999")
    with urllib.request.urlopen(request) as reply:
        assert json.loads(reply.read())["status"] == "NOT_FOUND"
    with pytest.raises(GeneratorError, match="continuous"):
        gen.start_continuous(imix, 1e5)
