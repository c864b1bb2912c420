"""The retrying measure function, and generators made from testbed profiles."""

from __future__ import annotations

import pytest

from bench.profiles import PROFILES_DIR, load_profile
from traffic.errors import GeneratorError, SearchError
from traffic.generators import make_generator
from traffic.model import (
    Direction,
    GeneratorInfo,
    LaneCounts,
    StreamSpec,
    TrialKind,
    TrialResult,
    TrialSpec,
)
from traffic.nfvbench import NfvbenchGenerator
from traffic.trex.driver import TrexGenerator
from traffic.trial import TrialRunner

STREAMS = StreamSpec(64, 10, Direction.UNIDIRECTIONAL)


class FlakyGenerator:
    """Fails the trials whose numbers are in `failures` (by raising or returning invalid)."""

    def __init__(self, failures: dict[int, str]) -> None:
        self.failures = failures
        self.trials = 0
        self.opens = 0
        self.closes = 0

    def open(self) -> GeneratorInfo:
        self.opens += 1
        return GeneratorInfo("test", "1", "none", ())

    def close(self) -> None:
        self.closes += 1

    def run_trial(self, spec: TrialSpec) -> TrialResult:
        self.trials += 1
        how = self.failures.get(self.trials)
        if how == "raise":
            raise GeneratorError("connection lost")
        if how == "invalid":
            return TrialResult.invalid(spec, "port 1 link is down")
        offered = round(spec.intended_load_pps * spec.intended_duration_s)
        return TrialResult(spec, spec.intended_duration_s, (LaneCounts(0, 1, offered, offered),))


def test_invalid_trials_are_recorded_retried_after_reconnect_and_never_returned() -> None:
    gen = FlakyGenerator({1: "raise", 2: "invalid"})
    records: list[TrialResult] = []
    runner = TrialRunner(gen, STREAMS, record=records.append, reconnect_pause_s=0.0)
    result = runner(2.0, 1e5)
    assert result.valid and result.offered_count == 200_000
    assert [r.valid for r in records] == [False, False, True]
    assert "connection lost" in (records[0].invalid_reason or "")
    assert records[1].invalid_reason == "port 1 link is down"
    assert (gen.closes, gen.opens) == (2, 2)
    assert runner.invalid_trials == 2


def test_too_many_invalid_trials_end_the_search_with_an_error() -> None:
    gen = FlakyGenerator({1: "invalid", 2: "invalid", 3: "invalid"})
    runner = TrialRunner(gen, STREAMS, max_attempts=3, reconnect_pause_s=0.0)
    expected = r"3 attempts .* were invalid; last: port 1 link is down"
    with pytest.raises(SearchError, match=expected):
        runner(1.0, 1e5)


def test_learning_frames_come_first_and_are_not_returned() -> None:
    gen = FlakyGenerator({})
    records: list[TrialResult] = []
    runner = TrialRunner(gen, STREAMS, record=records.append, learning_frames=True)
    first = runner(1.0, 1e5)
    runner(1.0, 2e5)
    assert [r.spec.kind for r in records] == [
        TrialKind.LEARNING,
        TrialKind.SEARCH,
        TrialKind.SEARCH,
    ]
    assert first is records[1]


def test_generators_from_testbed_profiles() -> None:
    lab = load_profile(PROFILES_DIR / "testbeds" / "lab.yaml").profile
    trex = make_generator(lab.generator)
    assert isinstance(trex, TrexGenerator)
    assert trex.config.port_speeds_bps == {0: 25e9, 1: 25e9}
    e810 = load_profile(PROFILES_DIR / "testbeds" / "e810-2x25g.yaml").profile
    gen = make_generator(e810.generator)
    assert isinstance(gen, TrexGenerator)
    assert [(t.port_id, t.dst_mac, t.vlan) for t in gen.config.ports] == [
        (0, "3c:fd:fe:a0:00:10", 100),
        (1, "3c:fd:fe:a0:00:11", 101),
    ]
    spec = lab.generator.model_copy(
        update={"type": "nfvbench", "nfvbench_url": "http://127.0.0.1:1"}
    )
    assert isinstance(make_generator(spec), NfvbenchGenerator)
