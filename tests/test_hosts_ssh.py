"""The host layer against a real OpenSSH server on 127.0.0.1."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from bench.hosts import (
    HostAuthFailed,
    HostKeyChanged,
    HostKeyUnknown,
    HostUnreachable,
    RemoteCommandFailed,
    SshTarget,
    collect_fingerprint,
    connect,
    local_fingerprint,
)
from bench.hosts.runner import ExecFS, write_file
from bench.hosts.ssh import parse_destination
from bench.profiles import HostSpec, SshSpec
from tests.fixtures.hosts.sshd import Sshd, free_port, keygen, start_sshd

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "hosts"


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    server = start_sshd(tmp_path_factory.mktemp("sshd"))
    yield server
    server.stop()


@pytest.fixture
def target(sshd: Sshd) -> SshTarget:
    return SshTarget(
        "127.0.0.1",
        port=sshd.port,
        key_file=str(sshd.user_key),
        use_agent=False,
        known_hosts=str(sshd.known_hosts),
        timeout_s=5.0,
    )


def test_connects_with_strict_host_key_checking_and_runs_commands(target: SshTarget) -> None:
    with connect(target) as host:
        result = host.run("echo out; echo err >&2; exit 0")
        assert (result.stdout, result.stderr, result.exit_status) == ("out\n", "err\n", 0)
        big = host.run("head -c 3000000 /dev/zero | tr '\\0' x; head -c 300000 /dev/zero >&2")
        assert len(big.stdout) == 3_000_000 and len(big.stderr) == 300_000
        assert host.run("cat", stdin=b"through stdin").stdout == "through stdin"


def test_a_failing_command_is_an_error_that_names_it(target: SshTarget) -> None:
    with connect(target) as host:
        with pytest.raises(
            RemoteCommandFailed, match=r"'ls /no/such' exited with status 2"
        ) as exc:
            host.run("ls /no/such")
        assert exc.value.exit_status == 2 and "No such file" in exc.value.stderr
        assert host.run("exit 3", check=False).exit_status == 3
        with pytest.raises(RemoteCommandFailed, match=r"did not finish within 0\.5 s"):
            host.run("sleep 5", timeout_s=0.5)
        assert host.run("echo still usable").ok


def test_fingerprint_of_this_machine_over_ssh(target: SshTarget) -> None:
    with connect(target) as host:
        remote = collect_fingerprint(host)
        over_sftp = collect_fingerprint(host, fs=host.filesystem(method="sftp"))
    local = local_fingerprint()
    assert remote.sha256 == local.sha256 == over_sftp.sha256
    assert replace(remote, collected_at=0) == replace(over_sftp, collected_at=0)
    assert remote.kernel == local.kernel and remote.nics == local.nics
    assert remote.hostname == local.hostname


def test_fixture_trees_over_ssh_sftp_and_cat(target: SshTarget, tmp_path: Path) -> None:
    # the tree is copied to a directory on the "remote" host and read through the session
    tree = tmp_path / "remote-root"
    shutil.copytree(FIXTURES / "e810-sriov", tree, symlinks=True)
    with connect(target) as host:
        over_sftp = collect_fingerprint(host, fs=host.filesystem(str(tree), method="sftp"))
        over_cat = ExecFS(host, str(tree))
        driver = over_cat.readlink("/sys/bus/pci/devices/0000:3b:01.0/driver")
        assert driver is not None and driver.endswith("/vfio-pci")
        assert over_cat.listdir("/sys/devices/system/node") == ["node0", "node1"]
        assert over_cat.read_text("/no/such/file") is None
        # the cat fallback reads the whole tree in one batched command
        started = time.monotonic()
        over_cat_fp = collect_fingerprint(host, root=str(tree))  # batched exec: the default
        assert time.monotonic() - started < 10
    pf = over_sftp.nic("0000:3b:00.0")
    assert pf is not None and (pf.sriov_total_vfs, pf.sriov_configured_vfs) == (128, 8)
    assert {vf.driver for vf in over_sftp.vfs_of(pf)} == {"vfio-pci"}
    assert over_sftp.hugepages_total(1048576) == 32
    assert {(p.node, p.total) for p in over_sftp.hugepages if p.size_kib == 1048576} == {
        (0, 16),
        (1, 16),
    }
    assert over_sftp.sha256 == local_fingerprint(str(tree)).sha256
    assert replace(over_cat_fp, collected_at=0) == replace(over_sftp, collected_at=0)


def test_write_file_is_atomic_and_sets_the_mode(target: SshTarget, tmp_path: Path) -> None:
    path = tmp_path / "cfg.yaml"
    with connect(target) as host:
        write_file(host, str(path), "- version: 2\n", mode=0o640)
    assert path.read_text() == "- version: 2\n"
    assert path.stat().st_mode & 0o777 == 0o640
    assert list(tmp_path.iterdir()) == [path]


def test_unknown_host_key_is_refused_with_advice(target: SshTarget, tmp_path: Path) -> None:
    empty = tmp_path / "known_hosts"
    with pytest.raises(HostKeyUnknown, match=r"not in .*known_hosts; check it") as exc:
        connect(replace(target, known_hosts=str(empty)))
    assert "ssh-keyscan -p" in str(exc.value) and "trust_new_host_key" in str(exc.value)
    assert not empty.exists()


def test_trusting_a_new_key_records_it(sshd: Sshd, target: SshTarget, tmp_path: Path) -> None:
    known = tmp_path / "ssh" / "known_hosts"
    with connect(replace(target, known_hosts=str(known), trust_new_host_key=True)) as host:
        assert host.run("true").ok
    entry = known.read_text().split()
    assert entry[0] == f"[127.0.0.1]:{sshd.port}" and entry[2] == sshd.host_key.split()[1]
    # now known: a strict session works
    with connect(replace(target, known_hosts=str(known))) as host:
        assert host.run("true").ok


def test_a_changed_host_key_is_an_error_even_when_trusting(
    target: SshTarget, tmp_path: Path
) -> None:
    other = tmp_path / "other_key"
    other_pub = keygen(other).split()
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{target.port} {other_pub[0]} {other_pub[1]}\n")
    for trust in (False, True):
        with pytest.raises(HostKeyChanged, match="the host key changed") as exc:
            connect(replace(target, known_hosts=str(known), trust_new_host_key=trust))
        assert "ssh-keygen -R" in str(exc.value)
    assert len(known.read_text().splitlines()) == 1


def test_unreachable_host() -> None:
    closed = free_port()
    with pytest.raises(
        HostUnreachable, match=r"cannot connect: Connection refused; is sshd running"
    ):
        connect(SshTarget("127.0.0.1", port=closed, use_agent=False, timeout_s=2.0))


def test_a_silent_port_times_out() -> None:
    # accepts TCP (the kernel completes the handshake) but never sends an SSH banner
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        port = silent.getsockname()[1]
        started = time.monotonic()
        with pytest.raises(HostUnreachable, match=r"127\.0\.0\.1:"):
            connect(SshTarget("127.0.0.1", port=port, use_agent=False, timeout_s=1.0))
        assert time.monotonic() - started < 5


def test_refused_auth_with_a_wrong_key(target: SshTarget, tmp_path: Path) -> None:
    stranger = tmp_path / "stranger"
    keygen(stranger)
    with pytest.raises(
        HostAuthFailed, match=f"authentication refused \\(tried key file {stranger}"
    ):
        connect(replace(target, key_file=str(stranger)))


def test_refused_password_from_the_environment(
    target: SshTarget, monkeypatch: pytest.MonkeyPatch
) -> None:
    password_only = replace(target, key_file=None, password_env="CNFBENCH_TEST_PASSWORD")
    with pytest.raises(HostAuthFailed, match="CNFBENCH_TEST_PASSWORD, which is not set"):
        connect(password_only)
    monkeypatch.setenv("CNFBENCH_TEST_PASSWORD", "not-the-password")
    with pytest.raises(HostAuthFailed, match=r"password from \$CNFBENCH_TEST_PASSWORD"):
        connect(password_only)


def test_missing_key_file(target: SshTarget, tmp_path: Path) -> None:
    with pytest.raises(HostAuthFailed, match="does not exist"):
        connect(replace(target, key_file=str(tmp_path / "nope")))


def test_ssh_agent(target: SshTarget, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sock = tmp_path / "agent.sock"
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if sock.exists():
                break
            subprocess.run(["sleep", "0.05"], check=True)
        env = {**os.environ, "SSH_AUTH_SOCK": str(sock)}
        subprocess.run(["ssh-add", "-q", str(target.key_file)], env=env, check=True)
        monkeypatch.setenv("SSH_AUTH_SOCK", str(sock))
        with connect(replace(target, key_file=None, use_agent=True)) as host:
            assert host.run("echo agent").stdout == "agent\n"
    finally:
        agent.terminate()
        agent.wait()


def test_jump_host(sshd: Sshd, target: SshTarget) -> None:
    # through the same sshd: it forwards to itself, as a bastion forwards to a lab host
    spec = SshSpec(
        port=sshd.port,
        key_file=str(sshd.user_key),
        use_agent=False,
        known_hosts=str(sshd.known_hosts),
        jump_host="bastion",
    )
    bastion = HostSpec(name="bastion", address="127.0.0.1", role="jump", ssh=spec)
    through = SshTarget.from_spec("127.0.0.1", spec, (bastion,))
    assert through.jump is not None and through.jump.jump is None
    with connect(through) as host:
        assert host.run("echo tunnelled").stdout == "tunnelled\n"
        assert collect_fingerprint(host).sha256 == local_fingerprint().sha256

    closed = free_port()
    with pytest.raises(HostUnreachable, match=r"jump host .* could not open a connection"):
        connect(replace(target, port=closed, jump=target))


def test_parse_destination() -> None:
    assert parse_destination("trex@bastion:2222", "root") == {
        "address": "bastion",
        "user": "trex",
        "port": 2222,
    }
    assert parse_destination("10.0.0.1", "root") == {
        "address": "10.0.0.1",
        "user": "root",
        "port": 22,
    }
