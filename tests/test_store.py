"""The results store: durable journal, truncation tolerance, compaction, schemas, loader."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import analysis
from analysis.errors import ResultsError
from bench.errors import StoreError
from bench.schemas import validate_run_dir
from bench.store import RunStore, new_run_id
from traffic.model import (
    Direction,
    LaneCounts,
    LatencySummary,
    Point,
    StreamSpec,
    TrialResult,
    TrialSpec,
)

POINT = Point(replicas=2, frame_size="64", flows=1000, direction=Direction.BIDIRECTIONAL)


def trial(load_pps: float, lost: int, valid: bool = True) -> TrialResult:
    spec = TrialSpec(StreamSpec(64, 1000, Direction.BIDIRECTIONAL, 1000.0), load_pps, 1.0)
    if not valid:
        return TrialResult.invalid(spec, "lost the RPC connection to the generator")
    half = int(load_pps / 2)
    lat = LatencySummary(5.0, 9.5, 40.0, 9.0, 12.0, 20.0, 35.0, samples=1000, hdrh=None)
    return TrialResult(
        spec=spec,
        measured_duration_s=1.0,
        lanes=(LaneCounts(0, 1, half, half - lost), LaneCounts(1, 0, half, half)),
        latency={"0->1": lat, "1->0": lat},
        achieved_tx_pps=load_pps,
    )


def make_run(tmp_path: Path, trials: int = 5) -> RunStore:
    store = RunStore.create(tmp_path, new_run_id("unit"), {"cnf": {"name": "x", "vendor": "v"}})
    with store.stage("sweep"):
        for i in range(trials):
            store.append_trial(trial(1e6 * (i + 1), lost=i), POINT, search_id="s1", phase="x")
        store.append_trial(trial(5e5, 0, valid=False), POINT, search_id="s1")
        store.append(
            "point",
            point={"replicas": 2, "frame_size": "64", "flows": 1000, "direction": "bidir"},
            measure="throughput",
            ndr_pps=1e6,
            pdr_pps=2e6,
        )
    return store


def test_records_are_durable_and_schema_valid(tmp_path: Path) -> None:
    store = make_run(tmp_path)
    assert validate_run_dir(store.directory) == 1 + 5 + 1 + 1 + 1
    manifest = store.manifest
    assert manifest["stages"]["sweep"]["status"] == "done"
    records = store.records()
    assert [r["seq"] for r in records] == list(range(1, len(records) + 1))
    invalid = [r for r in records if r["type"] == "trial" and not r["valid"]]
    assert invalid[0]["loss_ratio"] is None and "RPC" in invalid[0]["invalid_reason"]


def test_a_truncated_last_line_loses_no_complete_record(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = make_run(tmp_path)
    store.close()
    journal = store.directory / "journal.jsonl"
    data = journal.read_bytes()
    complete = data.count(b"\n")
    # cut the file in the middle of its last line, as a crash mid-write would
    last_start = data.rstrip(b"\n").rfind(b"\n") + 1
    journal.write_bytes(data[: last_start + (len(data) - last_start) // 2])
    runs = analysis.load_runs(tmp_path)
    assert len(runs.trials) == 6
    assert "truncated last record" in caplog.text
    assert len(RunStore.open(store.directory).records()) == complete - 1


def test_a_garbled_middle_line_is_skipped_not_fatal(tmp_path: Path) -> None:
    store = make_run(tmp_path)
    journal = store.directory / "journal.jsonl"
    lines = journal.read_bytes().split(b"\n")
    lines[3] = lines[3][:10] + b"\xff\x00garbage"
    journal.write_bytes(b"\n".join(lines))
    runs = analysis.load_runs(store.directory)
    assert len(runs.trials) == 5


def test_kill_9_between_trials_loses_nothing(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import os, signal
        from pathlib import Path
        from bench.store import RunStore
        from tests.test_store import trial, POINT
        store = RunStore.create(Path({str(tmp_path)!r}), "killed", {{}})
        for i in range(3):
            store.append_trial(trial(1e6, 0), POINT)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=Path(__file__).parent.parent, check=False
    )
    assert proc.returncode == -9
    runs = analysis.load_runs(tmp_path / "killed")
    assert len(runs.trials) == 3


def test_compaction_and_loader_agree(tmp_path: Path) -> None:
    store = make_run(tmp_path)
    before = analysis.load_runs(store.directory)
    counts = store.compact()
    assert counts == {"trials": 6, "points": 1}
    after = analysis.load_runs(store.directory)
    cols = ["intended_load_pps", "offered_count", "forwarded_count", "loss_ratio", "valid"]
    assert before.trials[cols].equals(after.trials[cols])
    assert after.trials["latency_p99_us"].iloc[0] == 20.0
    assert after.trials["search_id"].iloc[0] == "s1"
    assert after.points["ndr_pps"].iloc[0] == 1e6
    validate_run_dir(store.directory)
    # appending after compaction makes the Parquet stale: the loader must notice
    store.append_trial(trial(7e6, 0), POINT)
    assert len(analysis.load_runs(store.directory).trials) == 7


def test_loss_ratio_is_from_counts(tmp_path: Path) -> None:
    store = make_run(tmp_path, trials=3)
    runs = analysis.load_runs(store.directory)
    row = runs.trials[runs.trials["valid"]].iloc[2]
    assert row["loss_ratio"] == pytest.approx(2 / 3e6)
    assert row["replicas"] == 2 and row["direction"] == "bidir"


def test_store_refuses_an_existing_run_and_loader_bad_dirs(tmp_path: Path) -> None:
    store = make_run(tmp_path)
    with pytest.raises(StoreError, match="exists"):
        RunStore.create(tmp_path, store.directory.name, {})
    with pytest.raises(ResultsError, match="no such results directory"):
        analysis.load_runs(tmp_path / "nope")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "run.json").write_text('{"schema_version": 99}')
    with pytest.raises(ResultsError, match="schema_version"):
        analysis.load_runs(tmp_path / "bad")


def test_manifest_writes_are_atomic(tmp_path: Path) -> None:
    store = make_run(tmp_path)
    store.update_manifest(status="done")
    leftovers = [p for p in os.listdir(store.directory) if p.endswith(".tmp")]
    assert leftovers == []
    assert json.loads((store.directory / "run.json").read_text())["status"] == "done"
