"""Fingerprint collectors over fixture trees of real SR-IOV hosts, and this machine."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bench.hosts import Fingerprint, HostError, local_fingerprint, manifest_fingerprint
from bench.hosts.fingerprint import format_cpulist, kernel_series, parse_cpulist

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "hosts"
E810 = FIXTURES / "e810-sriov"
CX6 = FIXTURES / "cx6-sriov"


@pytest.fixture(scope="module")
def e810() -> Fingerprint:
    return local_fingerprint(str(E810))


@pytest.fixture(scope="module")
def cx6() -> Fingerprint:
    return local_fingerprint(str(CX6))


def test_cpu_topology_and_numa(e810: Fingerprint, cx6: Fingerprint) -> None:
    assert e810.cpu_model == "Intel(R) Xeon(R) Gold 6338N CPU @ 2.20GHz"
    assert (e810.sockets, e810.cores, e810.threads) == (2, 64, 128)
    assert e810.numa_nodes == {"0": "0-31,64-95", "1": "32-63,96-127"}
    assert (cx6.sockets, cx6.cores, cx6.threads) == (1, 32, 64)
    assert cx6.numa_nodes == {"0": "0-63"}


def test_isolation_and_governor(e810: Fingerprint, cx6: Fingerprint) -> None:
    assert e810.isolated_cpus == "2-31,66-95"
    assert e810.nohz_full == "2-31,66-95"
    assert "isolcpus=managed_irq,domain,2-31,66-95" in (e810.cmdline or "")
    assert e810.governors == {"performance": 128}
    assert cx6.governors == {"performance": 56, "schedutil": 8}


def test_hugepages_per_size_and_node(e810: Fingerprint, cx6: Fingerprint) -> None:
    one_gib = 1048576
    pools = {(p.size_kib, p.node): (p.total, p.free) for p in e810.hugepages}
    assert pools[(one_gib, 0)] == (16, 12)
    assert pools[(one_gib, 1)] == (16, 16)
    assert e810.hugepages_total(one_gib) == 32
    assert e810.default_hugepage_kib == one_gib
    assert cx6.hugepages_total(one_gib) == 64 and cx6.hugepages_total(2048) == 1024


def test_e810_sriov_pfs_and_vfio_vfs(e810: Fingerprint) -> None:
    pf = e810.nic("3b:00.0")
    assert pf is not None and not pf.is_vf
    assert pf.model == "Ethernet Controller E810-XXV for SFP"
    assert (pf.vendor_id, pf.device_id, pf.driver) == ("0x8086", "0x159b", "ice")
    assert pf.link_speed_bps == 25e9 and pf.numa_node == 0 and pf.interfaces == ("ens1f0",)
    assert (pf.sriov_total_vfs, pf.sriov_configured_vfs) == (128, 8)
    assert pf.vfs == tuple(f"0000:3b:01.{i}" for i in range(8))
    vfs = e810.vfs_of(pf)
    assert len(vfs) == 8
    assert all(
        vf.driver == "vfio-pci" and vf.model == "Ethernet Adaptive Virtual Function" for vf in vfs
    )
    # 16 VFs on vfio-pci across both PFs; the management NIC (igb) and the host bridge
    # are not DPDK devices
    assert len(e810.dpdk_devices) == 16
    assert {d.driver for d in e810.dpdk_devices} == {"vfio-pci"}
    assert {n.driver for n in e810.pfs} == {"ice", "igb"}
    assert e810.nic("0000:00:00.0") is None  # not network class


def test_cx6_bifurcated_driver_firmware_and_link_down(cx6: Fingerprint) -> None:
    up, down = cx6.nic("0000:98:00.0"), cx6.nic("0000:98:00.1")
    assert up is not None and down is not None
    assert up.model == "MT2892 Family [ConnectX-6 Dx]" and up.driver == "mlx5_core"
    assert up.firmware == "22.36.1010"
    assert up.sriov_configured_vfs == 16 and len(cx6.vfs_of(up)) == 16
    assert down.link_speed_bps is None and down.sriov_configured_vfs == 0
    assert cx6.dpdk_devices == ()  # mlx5 stays on its kernel driver
    assert "0000:98:00.1" in cx6.missing["link_speed"]


def test_software_versions(e810: Fingerprint, cx6: Fingerprint) -> None:
    assert e810.kernel == "5.15.0-91-generic" and e810.os == "Ubuntu 22.04.3 LTS"
    assert e810.trex_version == "v3.04" and e810.dpdk_version == "21.11.4"
    assert cx6.trex_version == "v3.02" and cx6.dpdk_version is None
    assert "dpdk_version" in cx6.missing
    # under a root prefix no command runs (it would describe the wrong machine)
    assert "ethtool not run under a root prefix" in e810.missing["firmware"]


def test_an_empty_host_records_what_it_lacks(tmp_path: Path) -> None:
    fp = local_fingerprint(str(tmp_path))
    assert fp.cpu_model is None and fp.nics == () and fp.hugepages == ()
    for fact in ("kernel", "os", "cpu_model", "numa_nodes", "hugepages", "nics", "governors"):
        assert fact in fp.missing, fact
    assert len(fp.sha256) == 64


def test_a_host_without_sysfs_topology_falls_back_to_cpuinfo(tmp_path: Path) -> None:
    root = tmp_path / "host"
    shutil.copytree(CX6 / "proc", root / "proc")
    (root / "sys/devices/system/cpu").mkdir(parents=True)
    (root / "sys/devices/system/cpu/online").write_text("0-63\n")
    fp = local_fingerprint(str(root))
    assert (fp.sockets, fp.cores, fp.threads) == (1, 32, 64)
    assert "governors" in fp.missing


def test_hash_covers_key_fields_only(e810: Fingerprint, tmp_path: Path) -> None:
    again = local_fingerprint(str(E810))
    assert again.sha256 == e810.sha256 and again.collected_at != e810.collected_at

    # another machine of the same build: other hostname, fewer free hugepages
    twin = tmp_path / "twin"
    shutil.copytree(E810, twin, symlinks=True)
    (twin / "proc/sys/kernel/hostname").write_text("worker-02\n")
    free = twin / "sys/devices/system/node/node1/hugepages/hugepages-1048576kB/free_hugepages"
    free.write_text("3\n")
    assert local_fingerprint(str(twin)).sha256 == e810.sha256

    # one VF less on a PF is a different testbed
    (twin / "sys/bus/pci/devices/0000:3b:00.1/sriov_numvfs").write_text("7\n")
    assert local_fingerprint(str(twin)).sha256 != e810.sha256


def test_round_trip_through_json(e810: Fingerprint) -> None:
    stored = json.loads(json.dumps(e810.to_dict()))
    assert stored["sha256"] == e810.sha256
    back = Fingerprint.from_dict(stored)
    assert back == e810 and back.sha256 == e810.sha256
    with pytest.raises(HostError, match="schema_version"):
        Fingerprint.from_dict({**stored, "schema_version": 99})


def test_manifest_fingerprint_ignores_host_names(e810: Fingerprint, cx6: Fingerprint) -> None:
    a = manifest_fingerprint([("trex-01", "generator", cx6), ("w1", "worker", e810)])
    b = manifest_fingerprint([("w9", "worker", e810), ("trex-09", "generator", cx6)])
    c = manifest_fingerprint([("trex-01", "worker", cx6), ("w1", "generator", e810)])
    assert a["sha256"] == b["sha256"] != c["sha256"]
    assert a["hosts"][0]["fingerprint"]["sha256"] == cx6.sha256


def test_this_machine() -> None:
    fp = local_fingerprint()
    assert fp.kernel == Path("/proc/sys/kernel/osrelease").read_text().strip()
    assert fp.threads is not None and fp.threads >= 1
    assert fp.root == "/"
    # every fact is either collected or its absence explained
    assert fp.governors or "governors" in fp.missing
    assert fp.nohz_full is not None or "nohz_full" in fp.missing


@pytest.mark.parametrize(
    ("text", "cpus"),
    [("0-3,8,10-11", [0, 1, 2, 3, 8, 10, 11]), ("managed_irq,domain,2-4", [2, 3, 4]), ("", [])],
)
def test_cpulists(text: str, cpus: list[int]) -> None:
    assert parse_cpulist(text) == cpus
    if cpus:
        assert parse_cpulist(format_cpulist(cpus)) == cpus
    assert format_cpulist([5, 1, 2, 3]) == "1-3,5"


def test_kernel_series() -> None:
    assert kernel_series("5.15.0-91-generic") == "5.15"
    assert kernel_series("6.1.0-18-amd64") == "6.1"
    assert kernel_series(None) is None


def test_trex_release_behind_a_link(tmp_path: Path) -> None:
    root = tmp_path / "host"
    (root / "srv/trex/v3.06").mkdir(parents=True)
    (root / "srv/trex/v3.06/t-rex-64").write_text("#!/bin/bash\n")
    (root / "srv/current").symlink_to("trex/v3.06")
    fp = local_fingerprint(str(root), trex_dirs=["/srv/current"])
    assert fp.trex_version == "v3.06"
    assert local_fingerprint(str(root), trex_dirs=["/srv/trex"]).trex_version == "v3.06"
    assert local_fingerprint(str(root), trex_dirs=["/opt/none"]).trex_version is None
