"""``cnfbench hosts`` against a real sshd, fixture trees and a stand-in TRex server.

Exit codes and error lines go through the real entry point in a subprocess; the rest is
invoked in-process (the entry point imports every subcommand, which takes seconds).
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from subprocess import CompletedProcess

import pytest
from click.testing import CliRunner, Result

from bench.commands.hosts import hosts_group
from bench.errors import InputError
from bench.hosts import HardwareMismatch, HostKeyUnknown, TrexServerError, local_fingerprint
from bench.hosts.trex import trex_config_for
from bench.profiles import TestbedProfile, load_profile
from tests.fixtures.hosts.sshd import Sshd, free_port, start_sshd

Run = Callable[..., CompletedProcess[str]]
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "hosts"


def invoke(*args: str) -> Result:
    """``cnfbench hosts ARGS`` in this process."""
    return CliRunner().invoke(hosts_group, list(args))


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    server = start_sshd(tmp_path_factory.mktemp("sshd"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("host") / "e810"
    shutil.copytree(FIXTURES / "e810-sriov", root, symlinks=True)
    return root


def write_testbed(path: Path, sshd: Sshd, *, link_speed: str = "25Gbps", port: int = 0) -> Path:
    path.write_text(
        f"""\
schema_version: 1
kind: testbed
name: probe-test
generator:
  type: trex
  host: 127.0.0.1
  ports:
    - {{id: 0, speed: 25Gbps, pci: "0000:3b:00.0"}}
    - {{id: 1, speed: 25Gbps, pci: "0000:3b:00.1"}}
  ssh:
    port: {port or sshd.port}
    key_file: {sshd.user_key}
    known_hosts: {sshd.known_hosts}
    use_agent: false
    timeout: 5s
expected:
  cpu_model: Intel(R) Xeon(R) Gold 6338N CPU @ 2.20GHz
  nic_model: E810-XXV
  nic_driver: vfio-pci
  link_speed: {link_speed}
  sriov_vfs: 8
  hugepages: {{size: 1Gi, count: 32}}
  isolated_cores: true
"""
    )
    return path


def test_probe_matching_testbed(sshd: Sshd, tree: Path, tmp_path: Path) -> None:
    profile = write_testbed(tmp_path / "testbed.yaml", sshd)
    result = invoke("probe", str(profile), "--root", str(tree))
    assert result.exit_code == 0, result.output
    assert "testbed probe-test" in result.stdout
    assert result.stdout.count(" match ") == 7 and "mismatch" not in result.stdout
    assert "worker-01" in result.stdout  # the fixture's hostname, read over SSH


def test_probe_json_carries_the_manifest_fingerprint(
    sshd: Sshd, tree: Path, tmp_path: Path
) -> None:
    profile = write_testbed(tmp_path / "testbed.yaml", sshd)
    result = invoke("probe", str(profile), "--root", str(tree), "--json")
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert {r["status"] for r in body["rows"]} == {"match"}
    (host,) = body["fingerprint"]["hosts"]
    assert (host["name"], host["role"]) == ("generator", "generator")
    assert host["fingerprint"]["sha256"] == local_fingerprint(str(tree)).sha256
    summary, comparison = body["fingerprint"]["summary"], body["fingerprint"]["comparison"]
    assert summary["generator.nic 0000:3b:00.0"].startswith("Ethernet Controller E810-XXV")
    assert summary["generator.hugepages"] == "16 x 1024M (node 0), 16 x 1024M (node 1)"
    assert comparison["generator.sriov_vfs"].startswith("match: expected 8, actual")


def test_probe_mismatch_exits_1(cnfbench: Run, sshd: Sshd, tree: Path, tmp_path: Path) -> None:
    profile = write_testbed(tmp_path / "testbed.yaml", sshd, link_speed="100Gbps")
    result = cnfbench("-q", "hosts", "probe", str(profile), "--root", str(tree))
    assert result.returncode == 1
    assert "mismatch" in result.stdout and "slower than the standardized link" in result.stdout
    assert "cnfbench: error: testbed probe-test: 1 mismatch(es)" in result.stderr


def test_probe_unreachable_host_fails(sshd: Sshd, tmp_path: Path) -> None:
    profile = write_testbed(tmp_path / "testbed.yaml", sshd, port=free_port())
    result = invoke("probe", str(profile), "--json")
    assert isinstance(result.exception, HardwareMismatch)
    (row,) = json.loads(result.stdout)["rows"]
    assert (row["property"], row["status"]) == ("ssh", "mismatch")
    assert "Connection refused" in row["detail"]


def test_probe_the_embedded_lab() -> None:
    result = invoke("probe", "lab")
    assert result.exit_code == 0, result.output
    assert "embedded lab" in result.stdout and "sha256" in result.stdout


def test_probe_unknown_testbed_is_a_usage_error() -> None:
    result = invoke("probe", "no-such-testbed")
    assert isinstance(result.exception, InputError) and result.exception.exit_code == 2
    assert "no bundled testbed (have: cx6-2x100g, e810-2x25g, lab)" in str(result.exception)


def test_fingerprint_command(sshd: Sshd, tmp_path: Path) -> None:
    destination = f"root@127.0.0.1:{sshd.port}"
    common = ["--key-file", str(sshd.user_key), "--no-agent"]
    result = invoke(
        "fingerprint", destination, *common, "--known-hosts", str(sshd.known_hosts), "--json"
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["sha256"] == local_fingerprint().sha256

    empty = tmp_path / "known_hosts"
    result = invoke("fingerprint", destination, *common, "--known-hosts", str(empty))
    assert isinstance(result.exception, HostKeyUnknown) and not empty.exists()
    result = invoke(
        "fingerprint", destination, *common, "--known-hosts", str(empty), "--trust-new-host-key"
    )
    assert result.exit_code == 0, result.output
    assert f"[127.0.0.1]:{sshd.port}" in empty.read_text()

    result = invoke("fingerprint", "local", "--root", str(FIXTURES / "cx6-sriov"))
    assert result.exit_code == 0
    assert "MT2892 Family [ConnectX-6 Dx] [mlx5_core] 100G, 16 VFs on mlx5_core" in result.stdout


def test_unknown_host_key_through_the_entry_point(
    cnfbench: Run, sshd: Sshd, tmp_path: Path
) -> None:
    empty = tmp_path / "known_hosts"
    result = cnfbench(
        "-q", "hosts", "fingerprint", f"root@127.0.0.1:{sshd.port}", "--no-agent",
        "--key-file", str(sshd.user_key), "--known-hosts", str(empty),
    )  # fmt: skip
    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith("cnfbench: error: root@127.0.0.1:") and "is not in" in line


def write_trex_testbed(path: Path, sshd: Sshd, directory: Path, standin_ports: str) -> Path:
    standin = FIXTURES / "trex_standin.py"
    command = f"{sys.executable} {standin} -i --cfg {{cfg}} --ports {standin_ports}"
    path.write_text(
        f"""\
schema_version: 1
kind: testbed
name: trex-test
generator:
  type: trex
  host: 127.0.0.1
  sync_port: {free_port()}
  async_port: {free_port()}
  ports:
    - {{id: 0, speed: 25Gbps, pci: "0000:3b:00.0", dst_mac: "3c:fd:fe:a0:00:10"}}
    - {{id: 1, speed: 25Gbps, pci: "0000:3b:00.1", dst_mac: "3c:fd:fe:a0:00:11"}}
  ssh: {{port: {sshd.port}, key_file: {sshd.user_key}, known_hosts: {sshd.known_hosts},
         use_agent: false}}
  server:
    install_dir: {directory}
    config_path: {directory}/trex_cfg.yaml
    log_path: {directory}/trex.log
    pid_path: {directory}/trex.pid
    command: "{command}"
    start_timeout: 20s
    cores: [2, 3]
"""
    )
    return path


def test_trex_server_commands(sshd: Sshd, tmp_path: Path) -> None:
    path = write_trex_testbed(tmp_path / "testbed.yaml", sshd, tmp_path, "3b:00.0,3b:00.1")
    profile = str(path)
    config = invoke("trex", "config", profile)
    assert config.exit_code == 0 and "dual_if:" in config.stdout
    testbed: TestbedProfile = load_profile(path).profile
    assert config.stdout == trex_config_for(testbed.generator)

    started = invoke("trex", "start", profile)
    assert started.exit_code == 0, started.output
    assert started.stdout.startswith("TRex v3.04 ready on 127.0.0.1:")
    try:
        assert (tmp_path / "trex_cfg.yaml").read_text() == config.stdout
        status = invoke("trex", "status", profile)
        assert status.exit_code == 0 and "version v3.04" in status.stdout
        log = invoke("trex", "log", profile)
        assert "zmq rpc server listening" in log.stdout
    finally:
        stopped = invoke("trex", "stop", profile)
    assert stopped.stdout == "stopped\n"
    status = invoke("trex", "status", profile)
    assert isinstance(status.exception, TrexServerError)
    assert "is not running" in str(status.exception)


def test_trex_start_failure_prints_the_log(cnfbench: Run, sshd: Sshd, tmp_path: Path) -> None:
    profile = str(write_trex_testbed(tmp_path / "testbed.yaml", sshd, tmp_path, "af:00.0"))
    result = cnfbench("-q", "hosts", "trex", "start", profile)
    assert result.returncode == 1
    assert "EAL: Cannot find device 0000:3b:00.0" in result.stderr
    assert "cnfbench: error: root@127.0.0.1" in result.stderr
    assert "exited during start-up: ERROR in DPDK initialization" in result.stderr


def test_trex_commands_need_a_generator_over_ssh() -> None:
    result = invoke("trex", "status", "lab")
    assert isinstance(result.exception, InputError) and result.exception.exit_code == 2
    assert "generator.ssh" in str(result.exception)
