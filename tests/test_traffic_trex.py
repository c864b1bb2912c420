"""The TRex driver through both real client generations against the lab's server:
searches that find the model's NDR/PDR, faults that become invalid trials and retries."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.clock import VirtualClock
from lab.dataplane import DataPlane, load_vendor
from lab.trex.server import TRexServer
from traffic.errors import GeneratorUnavailable
from traffic.model import Direction, Goal, StreamSpec, TrialResult, TrialSpec
from traffic.search import make_search
from traffic.trex.driver import TrexConfig, TrexGenerator, probe_api
from traffic.trial import TrialRunner

# A modest time scale: a 5 s trial lasts 0.2 s of wall time, long enough for the tests
# that kill or hang the worker mid-trial to land inside it.
TIME_SCALE = 25.0
REPLICAS = 2
FLOWS = 1024
STREAMS = StreamSpec(64, FLOWS, Direction.BIDIRECTIONAL, latency_rate_pps=1000.0)
GOALS = (
    Goal("NDR", 0.0, 0.0, 0.01, 0.5, 5.0, 5.0),
    Goal("PDR", 0.005, 0.0, 0.01, 0.5, 5.0, 5.0),
)


class Lab:
    def __init__(self, api: str) -> None:
        self.plane = DataPlane(load_vendor("vpp-router"), seed=4, noise=False)
        self.plane.set_replicas(REPLICAS, at_s=-1e9)
        self.server = TRexServer(
            self.plane, VirtualClock(TIME_SCALE), api=api, publish_interval_s=0.02
        )
        self.server.start()
        self.sync_port, self.async_port = self.server.ports()

    def config(self, **changes: object) -> TrexConfig:
        return TrexConfig(sync_port=self.sync_port, async_port=self.async_port, **changes)  # type: ignore[arg-type]

    def truth(self, loss_ratio: float) -> float:
        return self.plane.ground_truth(64, FLOWS, REPLICAS, True, loss_ratio=loss_ratio)


@pytest.fixture(scope="module", params=["v2.87", "v3.04"])
def lab(request: pytest.FixtureRequest) -> Iterator[Lab]:
    lab = Lab(request.param)
    yield lab
    lab.server.stop()


@pytest.fixture(params=["v2.87", "v3.04"])
def fresh_lab(request: pytest.FixtureRequest) -> Iterator[Lab]:
    """A lab of its own, for tests that take the ports from other sessions."""
    lab = Lab(request.param)
    yield lab
    lab.server.stop()


@pytest.fixture(scope="module")
def generator(lab: Lab) -> Iterator[TrexGenerator]:
    gen = TrexGenerator(lab.config())
    gen.open()
    yield gen
    gen.close()


@pytest.mark.parametrize("method", ["rfc2544-binary", "mlrsearch"])
def test_search_through_the_driver_finds_the_models_ndr_and_pdr(
    lab: Lab, generator: TrexGenerator, method: str
) -> None:
    expected = "legacy" if lab.server.api == "v2.87" else "current"
    assert generator.choice is not None and generator.choice.client == expected
    assert generator.info is not None and generator.info.version == lab.server.api
    records: list[TrialResult] = []
    runner = TrialRunner(generator, STREAMS, record=records.append, learning_frames=True)
    max_load = STREAMS.max_load_pps(25e9)
    result = make_search(method).search(runner, GOALS, 100_000, max_load)

    assert records[0].spec.kind.value == "learning" and records[0].valid
    assert all(r.valid for r in records)
    assert len(result.trials) == len(records) - 1
    for outcome in result.goals:
        truth = lab.truth(outcome.goal.loss_ratio)
        assert outcome.lower_bound_pps is not None
        assert abs(outcome.lower_bound_pps - truth) / truth <= outcome.goal.relative_width
    trial = result.trials[-1]
    assert set(trial.latency) == {"0->1", "1->0"}
    for summary in trial.latency.values():
        assert 0 < summary.min_us <= summary.p50_us <= summary.p99_us <= summary.max_us
        assert summary.samples > 0
    assert "trex" in trial.generator


def test_light_trial_counts_every_frame_and_keeps_latency_apart(generator: TrexGenerator) -> None:
    result = generator.run_trial(TrialSpec(STREAMS, 2e6, 5.0))
    assert result.valid, result.invalid_reason
    assert [(lane.offered, lane.forwarded) for lane in result.lanes] == [
        (5_000_000, 5_000_000)
    ] * 2
    assert result.loss_ratio == 0.0
    assert result.achieved_tx_pps == pytest.approx(2e6)
    assert result.warnings == ()


def test_killing_the_worker_mid_trial_gives_an_invalid_trial_then_a_correct_retry(
    lab: Lab, generator: TrexGenerator
) -> None:
    records: list[TrialResult] = []
    runner = TrialRunner(generator, STREAMS, record=records.append, reconnect_pause_s=0.1)
    victim = generator.worker_pid
    assert victim is not None
    killer = threading.Timer(0.4, os.kill, (victim, signal.SIGKILL))
    killer.start()
    result = runner(25.0, 2e6)  # 1 s of wall time at the lab's time scale
    killer.join()

    assert [r.valid for r in records] == [False, True]
    assert "died" in (records[0].invalid_reason or "")
    assert generator.worker_pid not in (None, victim)
    assert result is records[1]
    assert result.offered_count == result.forwarded_count == 2 * 25 * 1_000_000


def test_dropped_server_connection_gives_an_invalid_trial_then_a_correct_retry() -> None:
    lab = Lab("v3.04")  # the current client times out an RPC after 3 s
    try:
        generator = TrexGenerator(lab.config())
        generator.open()
        records: list[TrialResult] = []
        runner = TrialRunner(generator, STREAMS, record=records.append, reconnect_pause_s=0.5)
        lab.server.faults.drop_for_s = 1.0
        result = runner(5.0, 2e6)
        assert [r.valid for r in records] == [False, True]
        assert records[0].invalid_reason
        assert result.offered_count == result.forwarded_count == 2 * 5 * 1_000_000
        generator.close()
    finally:
        lab.server.stop()


def test_a_port_that_is_down_makes_the_trial_invalid(lab: Lab, generator: TrexGenerator) -> None:
    lab.server.engine.set_link(1, False, lab.server.clock.now_s())
    try:
        result = generator.run_trial(TrialSpec(STREAMS, 2e6, 5.0))
    finally:
        lab.server.engine.set_link(1, True, lab.server.clock.now_s())
    assert not result.valid
    assert "down" in (result.invalid_reason or "")
    with pytest.raises(ValueError, match="invalid trial has no loss ratio"):
        _ = result.loss_ratio


def test_continuous_traffic_samples(generator: TrexGenerator) -> None:
    generator.start_continuous(STREAMS, 2e6)
    samples = []
    for _ in range(3):
        time.sleep(0.05)
        samples.append(generator.sample_continuous())
    final = generator.stop_continuous()
    assert list(final[:3]) == samples and len(final) == 4
    assert sum(s.offered for s in final) > 0
    assert sum(s.forwarded for s in final) == sum(s.offered for s in final)
    assert [s.time_s for s in final] == sorted(s.time_s for s in final)


def test_client_choice_is_explained_and_a_mismatch_is_a_clear_error() -> None:
    lab = Lab("v3.04")
    try:
        choice = probe_api("127.0.0.1", lab.sync_port)
        assert choice.client == "current" and "api_sync_v2" in choice.reason
        legacy = TrexGenerator(lab.config(client="legacy"))
        with pytest.raises(GeneratorUnavailable, match="legacy client"):
            legacy.open()
        legacy.close()
    finally:
        lab.server.stop()
    with pytest.raises(GeneratorUnavailable, match="no TRex server answered"):
        probe_api("127.0.0.1", lab.sync_port, timeout_s=0.5)


def _package(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    assert spec is not None and spec.origin is not None, f"{name} is not installed"
    return Path(spec.origin).parent


def _installation(root: Path, release: str) -> Path:
    """A TRex installation's layout, its client directories linked to the installed
    client packages: ``<root>/<release>/automation/trex_control_plane/{interactive,stl}``
    and ``external_libs``."""
    current, legacy = (_package("lbr_trex_client"), _package("trex_stl_lib"))
    install = root / release
    plane = install / "automation" / "trex_control_plane"
    (plane / "stl").mkdir(parents=True)
    (plane / "interactive").symlink_to(current / "interactive", target_is_directory=True)
    (plane / "stl" / "trex_stl_lib").symlink_to(legacy, target_is_directory=True)
    (install / "external_libs").symlink_to(current / "external_libs", target_is_directory=True)
    return install


@pytest.mark.parametrize(("api", "client"), [("v3.04", "current"), ("v2.87", "legacy")])
def test_the_client_of_a_trex_installation_is_used(tmp_path: Path, api: str, client: str) -> None:
    install = _installation(tmp_path, api)
    lab = Lab(api)
    try:
        with TrexGenerator(lab.config(trex_path=str(install))) as gen:
            assert gen.info is not None
            # the worker imported the library through the installation's directory
            assert str(install / "automation" / "trex_control_plane") in gen.info.client
            result = gen.run_trial(TrialSpec(STREAMS, 2e6, 5.0))
            assert result.valid, result.invalid_reason
            assert [lane.forwarded for lane in result.lanes] == [5_000_000] * 2
        empty = tmp_path / "not-trex"
        empty.mkdir()
        with pytest.raises(GeneratorUnavailable, match=f"trex_path {empty}: no {client} TRex"):
            TrexGenerator(lab.config(trex_path=str(empty))).open()
    finally:
        lab.server.stop()


CONTROLLER = """
import sys, time
from traffic.model import Direction, StreamSpec
from traffic.trex.driver import TrexConfig, TrexGenerator
gen = TrexGenerator(TrexConfig(sync_port=int(sys.argv[1]), async_port=int(sys.argv[2])))
gen.open()
gen.start_continuous(StreamSpec(64, 16, Direction.BIDIRECTIONAL), 1e6)
print("running", flush=True)
time.sleep(60)
"""


def test_a_controller_that_dies_leaves_the_generator_idle_and_its_ports_free(
    fresh_lab: Lab,
) -> None:
    lab = fresh_lab
    proc = subprocess.Popen(
        [sys.executable, "-c", CONTROLLER, str(lab.sync_port), str(lab.async_port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "running"
        ports = lab.server.snapshot()["ports"]
        assert all(p["transmitting"] and p["owned"] for p in ports)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            ports = lab.server.snapshot()["ports"]
            if not any(p["transmitting"] or p["owned"] for p in ports):
                break
            time.sleep(0.1)
        assert not any(p["transmitting"] for p in ports), ports
        assert not any(p["owned"] for p in ports), ports
    finally:
        proc.kill()


def test_the_client_library_stays_out_of_the_controller(generator: TrexGenerator) -> None:
    assert generator.run_trial(TrialSpec(STREAMS, 1e6, 1.0)).valid
    assert not any(
        name == "trex" or name.startswith(("trex.", "trex_stl_lib")) for name in sys.modules
    )
    assert not any("lbr_trex_client" in path for path in sys.path)


def test_a_generator_short_of_its_intended_load_warns(generator: TrexGenerator) -> None:
    line = STREAMS.max_load_pps(25e9)
    result = generator.run_trial(TrialSpec(STREAMS, 1.2 * line, 2.0))
    assert result.valid
    assert result.achieved_tx_pps is not None and result.achieved_tx_pps < line * 1.01
    assert any("short of intended load" in w and "not CNF loss" in w for w in result.warnings)


def test_per_replica_stream_groups_reach_each_replica_by_its_mac(fresh_lab: Lab) -> None:
    lab = fresh_lab
    macs = tuple(m for m in lab.plane.replica_macs().values() if m)
    assert len(macs) == REPLICAS
    streams = StreamSpec(64, FLOWS, Direction.BIDIRECTIONAL, replica_macs={0: macs, 1: macs})
    generator = TrexGenerator(lab.config())
    generator.open()
    try:
        runner = TrialRunner(generator, streams)
        goals = (GOALS[0],)
        result = make_search("rfc2544-binary").search(
            runner, goals, 100_000, streams.max_load_pps(25e9)
        )
    finally:
        generator.close()
    expected = lab.plane.ground_truth(64, FLOWS, REPLICAS, True, steering="per-replica")
    lower = result.goals[0].lower_bound_pps
    assert lower is not None and abs(lower - expected) / expected <= GOALS[0].relative_width


def test_a_hung_worker_times_out_into_an_invalid_trial_and_is_replaced(lab: Lab) -> None:
    generator = TrexGenerator(lab.config(trial_timeout_margin_s=1.0))
    generator.open()
    try:
        hung = generator.worker_pid
        assert hung is not None
        os.kill(hung, signal.SIGSTOP)
        started = time.monotonic()
        result = generator.run_trial(TrialSpec(STREAMS, 1e6, 1.0))
        assert not result.valid
        assert "did not answer 'trial'" in (result.invalid_reason or "")
        assert time.monotonic() - started < 10
        with pytest.raises(ProcessLookupError):
            os.kill(hung, 0)  # killed and reaped, not left stopped
        generator.close()
        generator.open()
        assert generator.run_trial(TrialSpec(STREAMS, 1e6, 1.0)).valid
    finally:
        generator.close()
