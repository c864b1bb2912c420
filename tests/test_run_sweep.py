"""The main job on the embedded lab: results, resume after kill -9, clean stop on SIGINT."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import analysis
from bench.cluster import Cluster, WorkloadRef
from bench.labctl import LabHandle, control_request, start_lab
from bench.schemas import validate_run_dir
from lab.dataplane import DataPlane, load_vendor
from tests.conftest import REPO

FIXTURES = Path(__file__).parent / "fixtures" / "runs"
SWEEP = FIXTURES / "sweep-small.yaml"
MEASURED_KINDS = ("search", "latency", "sessions")


def _sweep_argv(results: Path, *extra: str, profile: Path = SWEEP) -> list[str]:
    return [sys.executable, "-m", "bench.cli", "-q", "sweep", str(profile),
            "--results-dir", str(results), *extra]  # fmt: skip


def _run(argv: list[str], timeout: float = 240.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False
    )


def _journal(run_dir: Path) -> list[dict[str, Any]]:
    out = []
    for line in (run_dir / "journal.jsonl").read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def _measured(run_dir: Path) -> list[tuple[Any, ...]]:
    """The measuring trials of a run, as what was asked: point, phase, load, duration."""
    return [
        (
            r["extra"]["point_key"],
            r["extra"]["phase"],
            round(r["intended_load_pps"], 3),
            r["intended_duration_s"],
        )
        for r in _journal(run_dir)
        if r["type"] == "trial" and r["valid"] and r["kind"] in MEASURED_KINDS
    ]


def _point_table(run_dir: Path) -> list[tuple[Any, ...]]:
    out = []
    for r in _journal(run_dir):
        if r["type"] != "point":
            continue
        p = r["point"]
        key = (p["replicas"], p["frame_size"], p["flows"], p["direction"], r["measure"])
        values = {k: v for k, v in r.items() if k not in ("seq", "time", "schema_version")}
        out.append((key, json.dumps(values, sort_keys=True)))
    return sorted(out)


def _only_run(results: Path) -> Path:
    runs = [p.parent for p in results.glob("*/run.json")]
    assert len(runs) == 1, runs
    return runs[0]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    results = tmp_path_factory.mktemp("uninterrupted")
    done = _run(_sweep_argv(results))
    assert done.returncode == 0, done.stderr[-3000:]
    return _only_run(results)


def test_sweep_leaves_a_complete_schema_valid_results_directory(uninterrupted: Path) -> None:
    records = validate_run_dir(uninterrupted)
    manifest = json.loads((uninterrupted / "run.json").read_text())
    assert manifest["status"] == "done"
    for stage in ("probe", "install", "sweep", "restore", "uninstall", "compact"):
        assert manifest["stages"][stage]["status"] == "done", stage
    assert manifest["generator"]["kind"] == "trex"
    assert manifest["testbed"]["fingerprint_sha256"]
    assert manifest["cnf"]["images"] and manifest["cnf"]["original_replicas"] == 1
    assert records == len(_journal(uninterrupted))
    for name in ("trials.parquet", "points.parquet"):
        assert (uninterrupted / name).is_file()

    runs = analysis.load_runs(uninterrupted)
    throughput = runs.points[runs.points["measure"] == "throughput"]
    assert sorted(throughput["replicas"]) == [1, 2, 3]
    model = DataPlane(load_vendor("vpp-router"), seed=7, noise=False)
    for row in throughput.itertuples():
        truth = model.ground_truth(64, 1000, int(row.replicas), True)
        # the lab's capacity noise moves single trials by a few per cent around the truth
        assert row.ndr_pps == pytest.approx(truth, rel=0.08)
        assert row.pdr_pps >= row.ndr_pps
    latency = runs.points[runs.points["measure"] == "latency"]
    assert set(latency["load_label"]) == {"50%", "90%"}
    assert (latency["latency_p99_us"] >= latency["latency_p50_us"]).all()
    sessions = runs.points[runs.points["measure"] == "sessions"]
    assert len(sessions) == 3


def test_kill_9_mid_sweep_then_resume_equals_an_uninterrupted_run(
    uninterrupted: Path, tmp_path: Path
) -> None:
    total = len(_measured(uninterrupted))
    proc = subprocess.Popen(
        _sweep_argv(tmp_path),
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 180
        run_dir: Path | None = None
        while time.monotonic() < deadline:
            found = list(tmp_path.glob("*/journal.jsonl"))
            if found:
                run_dir = found[0].parent
                if len(_measured(run_dir)) >= total // 2:
                    break
            time.sleep(0.05)
        else:
            pytest.fail("the sweep did not get half way in time")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert run_dir is not None
    before = _measured(run_dir)
    assert 0 < len(before) < total

    resumed = _run(_sweep_argv(tmp_path, "--resume", run_dir.name))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    after = _measured(run_dir)
    # every finished trial survived the kill, and none was measured again
    assert after[: len(before)] == before
    assert Counter(after) == Counter(_measured(uninterrupted))
    assert _point_table(run_dir) == _point_table(uninterrupted)
    assert json.loads((run_dir / "run.json").read_text())["status"] == "done"


@pytest.fixture
def running_lab(tmp_path: Path) -> Iterator[LabHandle]:
    with start_lab(tmp_path / "lab", seed=7, time_scale=400, replicas=0) as lab:
        yield lab


def test_sigint_mid_trial_stops_traffic_releases_ports_and_restores_replicas(
    running_lab: LabHandle, tmp_path: Path
) -> None:
    testbed = (FIXTURES / "testbed-lab.yaml").read_text()
    testbed += f"  state_dir: {running_lab.state_dir}\n"
    (tmp_path / "testbed-lab.yaml").write_text(testbed)
    for name in ("cnf-router.yaml", "traffic-small.yaml", "sweep-small.yaml"):
        text = (FIXTURES / name).read_text().replace("../../../", f"{REPO}/")
        (tmp_path / name).write_text(text)
    results = tmp_path / "results"
    proc = subprocess.Popen(
        _sweep_argv(results, profile=tmp_path / "sweep-small.yaml"),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    url = running_lab.endpoints.control_url
    assert url is not None
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            status = control_request(url, "/status")
            searching = [r for r in _journal_if_any(results) if r.get("kind") == "search"]
            if searching and any(p["transmitting"] for p in status["trex"]["ports"]):
                break
            time.sleep(0.01)
        else:
            pytest.fail("no trial was in flight in time")
        os.kill(proc.pid, signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr[-3000:]
    assert "--resume" in stderr

    status = control_request(url, "/status")
    for port in status["trex"]["ports"]:
        assert not port["transmitting"], port
        assert not port["owned"], port
    kubeconfig = running_lab.endpoints.services["kubernetes"]["kubeconfig"]
    cluster = Cluster.connect(kubeconfig)
    workload = cluster.workload(WorkloadRef("cnf-router", "Deployment", "router"))
    assert workload.replicas == 1
    run_dir = _only_run(results)
    manifest = json.loads((run_dir / "run.json").read_text())
    assert manifest["status"] == "interrupted"
    assert manifest["stages"]["sweep"]["status"] == "interrupted"

    # a resume on a testbed whose fingerprint changed is refused unless forced
    manifest["testbed"]["fingerprint_sha256"] = "0" * 64
    (run_dir / "run.json").write_text(json.dumps(manifest))
    refused = _run(
        _sweep_argv(results, "--resume", run_dir.name, profile=tmp_path / "sweep-small.yaml")
    )
    assert refused.returncode == 2, refused.stderr[-2000:]
    assert "testbed fingerprint changed" in refused.stderr
    assert "--force" in refused.stderr


def test_plan_is_printed_and_a_plan_over_budget_is_refused(tmp_path: Path) -> None:
    planned = _run(_sweep_argv(tmp_path, "--plan"))
    assert planned.returncode == 0, planned.stderr
    assert "plan: 3 points over replicas [1, 2, 3]" in planned.stdout
    assert not list(tmp_path.iterdir())
    tight = (FIXTURES / "sweep-small.yaml").read_text().replace("10min", "5s")
    for name in ("cnf-router.yaml", "traffic-small.yaml", "testbed-lab.yaml"):
        (tmp_path / name).write_text(
            (FIXTURES / name).read_text().replace("../../../", f"{REPO}/")
        )
    (tmp_path / "tight.yaml").write_text(tight)
    refused = _run(_sweep_argv(tmp_path / "results", profile=tmp_path / "tight.yaml"))
    assert refused.returncode == 2
    assert "tight.yaml: time_budget: the plan needs about" in refused.stderr
    assert not (tmp_path / "results").exists()


def _journal_if_any(results: Path) -> list[dict[str, Any]]:
    found = list(results.glob("*/journal.jsonl"))
    return _journal(found[0].parent) if found else []


def test_per_replica_steering_addresses_each_pod_on_both_ports(tmp_path: Path) -> None:
    """Streams addressed by each pod's VF MACs (from its Multus network status) reach the
    pods on both generator ports, so no replica idles the way flow hashing can leave one."""
    for name in ("cnf-router.yaml", "traffic-small.yaml", "sweep-small.yaml"):
        text = (FIXTURES / name).read_text().replace("../../../", f"{REPO}/")
        (tmp_path / name).write_text(text)
    testbed = (FIXTURES / "testbed-lab.yaml").read_text()
    (tmp_path / "testbed-lab.yaml").write_text(
        testbed.replace("steering: shared-front", "steering: per-replica")
    )
    done = _run(_sweep_argv(tmp_path / "results", profile=tmp_path / "sweep-small.yaml"))
    assert done.returncode == 0, done.stderr[-3000:]
    runs = analysis.load_runs(tmp_path / "results")
    throughput = runs.points[runs.points["measure"] == "throughput"]
    model = DataPlane(load_vendor("vpp-router"), seed=7, noise=False)
    for row in throughput.itertuples():
        truth = model.ground_truth(64, 1000, int(row.replicas), True, steering="per-replica")
        assert row.ndr_pps == pytest.approx(truth, rel=0.05)
