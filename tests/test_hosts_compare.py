"""Fingerprints against the bundled testbed profiles, and comparability of testbeds."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from rich.console import Console

from bench.hosts import (
    Comparison,
    Fingerprint,
    Status,
    comparable,
    compare,
    comparison_table,
    has_mismatch,
    local_fingerprint,
    manifest_fingerprint,
)
from bench.profiles import PROFILES_DIR, ExpectedHardware, TestbedProfile, load_profile

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "hosts"


def bundled_testbed(name: str) -> TestbedProfile:
    profile: TestbedProfile = load_profile(PROFILES_DIR / "testbeds" / f"{name}.yaml").profile
    return profile


def ports(profile: TestbedProfile) -> list[str]:
    return [p.pci for p in profile.generator.ports if p.pci]


@pytest.fixture(scope="module")
def e810() -> Fingerprint:
    return local_fingerprint(str(FIXTURES / "e810-sriov"))


@pytest.fixture(scope="module")
def cx6() -> Fingerprint:
    return local_fingerprint(str(FIXTURES / "cx6-sriov"))


def statuses(rows: list[Comparison]) -> dict[str, Status]:
    return {r.property: r.status for r in rows}


def test_e810_host_matches_its_testbed(e810: Fingerprint) -> None:
    profile = bundled_testbed("e810-2x25g")
    rows = compare(e810, profile.expected, host="trex-01", ports=ports(profile))
    assert statuses(rows) == {
        prop: Status.MATCH
        for prop in (
            "cpu_model",
            "nic_model",
            "nic_driver",
            "link_speed",
            "sriov_vfs",
            "hugepages",
            "isolated_cores",
        )
    }
    assert not has_mismatch(rows)
    assert all(r.host == "trex-01" for r in rows)
    driver = next(r for r in rows if r.property == "nic_driver")
    assert driver.actual == "ice (VFs vfio-pci)"  # vfio-pci through the VFs


def test_cx6_host_on_its_testbed_warns_of_the_down_link(cx6: Fingerprint) -> None:
    profile = bundled_testbed("cx6-2x100g")
    rows = compare(cx6, profile.expected, ports=ports(profile))
    got = statuses(rows)
    assert got.pop("link_speed") is Status.DEVIATION
    assert set(got.values()) == {Status.MATCH}
    assert rows[0].host == "trex-02"  # the hostname when no name is given


def test_e810_host_on_the_100g_testbed_is_a_mismatch(e810: Fingerprint) -> None:
    profile = bundled_testbed("cx6-2x100g")
    rows = compare(e810, profile.expected, ports=ports(profile))
    got = statuses(rows)
    assert has_mismatch(rows)
    for prop in ("cpu_model", "nic_model", "nic_driver", "link_speed", "sriov_vfs", "hugepages"):
        assert got[prop] is Status.MISMATCH, prop
    nic = next(r for r in rows if r.property == "nic_model")
    assert "no PCI function 0000:98:00.0" in nic.detail


@pytest.mark.parametrize(
    ("expected", "prop", "status"),
    [
        (ExpectedHardware(sriov_vfs=4), "sriov_vfs", Status.DEVIATION),
        (ExpectedHardware(sriov_vfs=16), "sriov_vfs", Status.MISMATCH),
        (ExpectedHardware(sriov_vfs=200), "sriov_vfs", Status.MISMATCH),
        (ExpectedHardware(link_speed="10Gbps"), "link_speed", Status.DEVIATION),
        (ExpectedHardware(link_speed="100Gbps"), "link_speed", Status.MISMATCH),
        (ExpectedHardware(hugepages={"size": "1Gi", "count": 16}), "hugepages", Status.DEVIATION),
        (ExpectedHardware(hugepages={"size": "2Mi", "count": 512}), "hugepages", Status.MISMATCH),
        (ExpectedHardware(kernel="5.15"), "kernel", Status.MATCH),
        (ExpectedHardware(kernel="5.15.0-97"), "kernel", Status.DEVIATION),
        (ExpectedHardware(kernel="6.8"), "kernel", Status.MISMATCH),
        (ExpectedHardware(isolated_cores=False), "isolated_cores", Status.DEVIATION),
        (ExpectedHardware(cpu_governor="performance"), "cpu_governor", Status.MATCH),
        (ExpectedHardware(cpu_governor="powersave"), "cpu_governor", Status.MISMATCH),
        (ExpectedHardware(nic_model="E810-XXV", nic_driver="ice"), "nic_driver", Status.MATCH),
        (ExpectedHardware(nic_model="ConnectX-6"), "nic_model", Status.MISMATCH),
    ],
)
def test_each_property(
    e810: Fingerprint, expected: ExpectedHardware, prop: str, status: Status
) -> None:
    # without generator ports, NIC properties apply to the PFs of nic_model (or all PFs)
    model = expected.nic_model or "E810-XXV"
    rows = compare(e810, expected.model_copy(update={"nic_model": model}))
    assert statuses(rows)[prop] is status, [r for r in rows if r.property == prop]


def test_governor_mix_is_a_deviation(cx6: Fingerprint) -> None:
    rows = compare(cx6, ExpectedHardware(cpu_governor="performance"))
    assert rows[0].status is Status.DEVIATION and "schedutil (8 CPUs)" in rows[0].actual


def test_a_fact_not_collected_is_a_deviation_that_says_why(tmp_path: Path) -> None:
    fp = local_fingerprint(str(tmp_path))
    rows = compare(fp, ExpectedHardware(cpu_model="X", kernel="5.15", nic_model="E810"))
    got = {r.property: r for r in rows}
    assert got["cpu_model"].status is Status.DEVIATION
    assert "model name" in got["cpu_model"].detail
    assert got["kernel"].status is Status.DEVIATION
    assert got["nic_model"].status is Status.MISMATCH  # no NIC at all is known


def test_table_renders_every_row(e810: Fingerprint) -> None:
    rows = compare(e810, bundled_testbed("cx6-2x100g").expected)
    console = Console(record=True, width=200)
    console.print(comparison_table(rows, "cx6-2x100g"))
    text = console.export_text()
    assert text.count("mismatch") == sum(r.status is Status.MISMATCH for r in rows)
    assert "MT2892 Family [ConnectX-6 Dx]" in text  # brackets survive rich markup


def test_comparable(e810: Fingerprint, cx6: Fingerprint, tmp_path: Path) -> None:
    assert comparable(e810, e810.to_dict()) == []
    reasons = comparable(e810, cx6)
    fields = {r.split(":")[1].strip() for r in reasons}
    assert {"cpu_model", "nics", "kernel", "trex_version", "sockets"} <= fields

    twin_root = tmp_path / "twin"
    shutil.copytree(FIXTURES / "e810-sriov", twin_root, symlinks=True)
    (twin_root / "proc/sys/kernel/hostname").write_text("worker-07\n")
    (twin_root / "proc/sys/kernel/osrelease").write_text("5.15.0-97-generic\n")
    twin = local_fingerprint(str(twin_root))
    assert comparable(e810, twin) == []  # same kernel series, other host name
    (twin_root / "opt/trex/v3.04").rename(twin_root / "opt/trex/v3.06")
    assert comparable(e810, local_fingerprint(str(twin_root))) == [
        "host: trex_version: v3.04 vs v3.06"
    ]


def test_comparable_testbeds_match_hosts_by_role(e810: Fingerprint, cx6: Fingerprint) -> None:
    a = manifest_fingerprint([("trex-02", "generator", cx6), ("w1", "worker", e810)])
    b = manifest_fingerprint([("gen", "generator", cx6), ("w2", "worker", e810)])
    assert comparable(a, b) == []
    c = manifest_fingerprint([("gen", "generator", cx6)])
    assert comparable(a, c) == ["worker hosts: 1 vs 0"]
    d = manifest_fingerprint([("gen", "generator", e810), ("w2", "worker", e810)])
    assert any(r.startswith("generator: cpu_model:") for r in comparable(a, d))
