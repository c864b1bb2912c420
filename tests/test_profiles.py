"""Profiles: the shipped ones validate, broken ones are reported with file:line:field."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.errors import ProfileError
from bench.profiles import (
    RunProfile,
    TestbedProfile,
    TrafficProfile,
    load_profile,
    load_run,
    validate_files,
)
from tests.conftest import PROFILES

SHIPPED = sorted(PROFILES.glob("*/*.yaml"))


def test_every_shipped_profile_validates() -> None:
    summaries, problems = validate_files(SHIPPED)
    assert problems == []
    assert len(summaries) == len(SHIPPED) >= 10


def test_demo_run_bundle_resolves_its_profiles() -> None:
    bundle = load_run(PROFILES / "runs" / "demo.yaml")
    assert isinstance(bundle.run.profile, RunProfile)
    tb = bundle.testbed.profile
    assert isinstance(tb, TestbedProfile) and tb.lab is not None
    assert [p.speed for p in tb.generator.ports] == [25e9, 25e9]
    traffic = bundle.traffic.profile
    assert isinstance(traffic, TrafficProfile)
    assert traffic.frame_sizes == ("64", "IMIX")
    assert traffic.latency.rate == 1000.0
    goals = traffic.search.resolved_goals()
    assert [g.name for g in goals] == ["NDR", "PDR"]
    assert goals[1].loss_ratio == pytest.approx(0.005)
    assert len(bundle.run.sha256) == 64


def test_reference_testbed_has_the_standard_shape() -> None:
    tb = load_profile(PROFILES / "testbeds" / "e810-2x25g.yaml").profile
    assert isinstance(tb, TestbedProfile)
    assert tb.expected.nic_driver == "vfio-pci"
    assert tb.expected.hugepages is not None and tb.expected.hugepages.size == "1Gi"
    assert tb.generator.ports[0].vlan == 100


BROKEN = """\
schema_version: 1
kind: traffic
name: broken
frame_sizes: [64, 12000]
flow_counts: [1000]
colour: blue
latency:
  rate: 1000
search:
  method: fastest
"""


def test_broken_profile_lists_every_problem_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(BROKEN)
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    problems = info.value.problems
    assert f"{path}:4: frame_sizes[1]: frame size 12000 B is outside 64..9000 B" in "\n".join(
        problems
    )
    assert f"{path}:6: colour: unknown key" in problems
    assert any(
        p.startswith(f"{path}:8: latency.rate: packet rate 1000 needs a unit") for p in problems
    )
    assert any(p.startswith(f"{path}:10: search.method: ") for p in problems)
    assert len(problems) == 4


def test_missing_field_and_bad_kind(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text("schema_version: 1\nkind: traffic\nname: x\nframe_sizes: [64]\n")
    with pytest.raises(ProfileError, match=r"t.yaml:1: flow_counts: required field is missing"):
        load_profile(path)
    path.write_text("kind: gizmo\nname: x\n")
    with pytest.raises(ProfileError, match=r"t.yaml:1: kind: must be one of"):
        load_profile(path)


def test_yaml_syntax_and_duplicate_keys_are_located(tmp_path: Path) -> None:
    path = tmp_path / "y.yaml"
    path.write_text("kind: traffic\nname: a\nname: b\n")
    with pytest.raises(ProfileError, match=r"y.yaml:3: name: duplicate key"):
        load_profile(path)
    path.write_text("kind: traffic\nname: [a\n")
    with pytest.raises(ProfileError, match=r"y.yaml:\d+: \(yaml\): "):
        load_profile(path)


def test_run_profile_names_a_missing_file(tmp_path: Path) -> None:
    run = (PROFILES / "runs" / "demo.yaml").read_text().replace("../cnfs/", str(tmp_path) + "/")
    path = tmp_path / "run.yaml"
    path.write_text(run)
    with pytest.raises(ProfileError, match=r"run.yaml:\d+: cnf: no file "):
        load_run(path)


def test_cli_validate_prints_summaries_and_exits_2_on_problems(
    cnfbench: object, tmp_path: Path
) -> None:
    assert callable(cnfbench)
    ok = cnfbench("profiles", "validate", *map(str, SHIPPED))
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.count(": ok: ") == len(SHIPPED)
    bad = tmp_path / "broken.yaml"
    bad.write_text(BROKEN)
    result = cnfbench("profiles", "validate", str(bad))
    assert result.returncode == 2
    assert result.stderr.splitlines()[0].startswith(f"{bad}:")
    assert "Traceback" not in result.stderr
    assert f"{bad}:6: colour: unknown key" in result.stderr.splitlines()
