"""The TRex server lifecycle over a real sshd, with a stand-in server script."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from bench.hosts import SshTarget, TrexServerError, TrexStartFailed, connect
from bench.hosts.ssh import SshRunner
from bench.hosts.trex import (
    TrexPlatform,
    TrexServer,
    TrexServerConfig,
    render_trex_config,
    trex_config_for,
)
from bench.profiles import PROFILES_DIR, TestbedProfile, load_profile
from tests.fixtures.hosts.sshd import Sshd, free_port, start_sshd

STANDIN = Path(__file__).resolve().parent / "fixtures" / "hosts" / "trex_standin.py"
PORTS = "3b:00.0,3b:00.1"


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    server = start_sshd(tmp_path_factory.mktemp("sshd"))
    yield server
    server.stop()


@pytest.fixture
def host(sshd: Sshd) -> Iterator[SshRunner]:
    target = SshTarget(
        "127.0.0.1",
        port=sshd.port,
        key_file=str(sshd.user_key),
        use_agent=False,
        known_hosts=str(sshd.known_hosts),
    )
    with connect(target) as runner:
        yield runner


def server_config(directory: Path, rpc_port: int) -> TrexServerConfig:
    return TrexServerConfig(
        rpc_host="127.0.0.1",
        rpc_port=rpc_port,
        async_port=free_port(),
        install_dir=str(directory),
        config_path=str(directory / "trex_cfg.yaml"),
        log_path=str(directory / "trex.log"),
        pid_path=str(directory / "trex.pid"),
        command=f"{sys.executable} {STANDIN} -i --cfg {{cfg}} --ports {PORTS}",
        start_timeout_s=20.0,
    )


def config_text(config: TrexServerConfig, interfaces: list[str]) -> str:
    return render_trex_config(interfaces, rpc_port=config.rpc_port, async_port=config.async_port)


def test_start_wait_version_stop(host: SshRunner, tmp_path: Path) -> None:
    config = server_config(tmp_path, free_port())
    server = TrexServer(host, config)
    server.write_config(config_text(config, ["0000:3b:00.0", "0000:3b:00.1"]))
    written = yaml.safe_load((tmp_path / "trex_cfg.yaml").read_text())
    assert written[0]["interfaces"] == ["3b:00.0", "3b:00.1"]

    pid = server.start()
    try:
        version = server.wait_ready()
        assert version.version == "v3.04" and version.mode == "STL"
        assert server.pid() == pid
        assert server.version().raw["built_by"] == "standin"
        with pytest.raises(TrexServerError, match=f"already running \\(pid {pid}\\)"):
            server.start()
    finally:
        assert server.stop() is True
    assert server.pid() is None
    assert not server.alive(pid)
    log = server.fetch_log()
    assert "zmq rpc server listening" in log and "rpc: get_version" in log
    assert "shutting down" in log
    assert server.stop() is False  # nothing left to stop


def test_a_server_that_fails_to_start_gives_its_log(host: SshRunner, tmp_path: Path) -> None:
    config = server_config(tmp_path, free_port())
    server = TrexServer(host, config)
    server.write_config(config_text(config, ["0000:af:00.0", "0000:af:00.1"]))
    server.start()
    with pytest.raises(TrexStartFailed, match="exited during start-up: ERROR in DPDK") as exc:
        server.wait_ready()
    assert "EAL: Cannot find device 0000:af:00.0" in exc.value.log
    assert "Starting TRex v3.04" in exc.value.log


def test_a_server_that_never_answers_is_stopped(host: SshRunner, tmp_path: Path) -> None:
    # a shell command line, with braces that are not the config placeholder
    command = "echo waiting for ${NOTHING:-nothing} on {cfg}; sleep 60"
    config = replace(server_config(tmp_path, free_port()), command=command)
    server = TrexServer(host, config)
    pid = server.start()
    with pytest.raises(
        TrexStartFailed,
        match=r"did not answer on 127\.0\.0\.1:\d+ within 1 s: waiting for nothing",
    ) as exc:
        server.wait_ready(timeout_s=1.0)
    assert f"on {tmp_path / 'trex_cfg.yaml'}" in exc.value.log
    assert not server.alive(pid)  # stopped, not left behind


def test_running_context_manager(host: SshRunner, tmp_path: Path) -> None:
    config = server_config(tmp_path, free_port())
    server = TrexServer(host, config)
    with server.running(config_text(config, ["3b:00.0", "3b:00.1"])) as version:
        assert version.version == "v3.04"
        pid = server.pid()
        assert pid is not None
    assert server.pid() is None


def test_start_in_a_missing_directory_is_an_error(host: SshRunner, tmp_path: Path) -> None:
    config = replace(server_config(tmp_path, free_port()), install_dir=str(tmp_path / "nope"))
    with pytest.raises(TrexServerError, match=r"could not be started in .*/nope: .*No such file"):
        TrexServer(host, config).start()


def test_config_from_the_bundled_testbed() -> None:
    profile: TestbedProfile = load_profile(PROFILES_DIR / "testbeds" / "e810-2x25g.yaml").profile
    text = trex_config_for(profile.generator, TrexPlatform(threads=(2, 3, 4, 5)))
    body = yaml.safe_load(text)[0]
    assert body["version"] == 2
    assert body["interfaces"] == ["3b:00.0", "3b:00.1"]
    assert body["port_info"] == [
        {"dest_mac": "3c:fd:fe:a0:00:10"},
        {"dest_mac": "3c:fd:fe:a0:00:11"},
    ]
    assert (body["zmq_rpc_port"], body["zmq_pub_port"]) == (4501, 4500)
    assert body["platform"]["dual_if"] == [{"socket": 0, "threads": [2, 3, 4, 5]}]

    lab: TestbedProfile = load_profile(PROFILES_DIR / "testbeds" / "lab.yaml").profile
    with pytest.raises(TrexServerError, match="no pci address"):
        trex_config_for(lab.generator)
    with pytest.raises(TrexServerError, match="even number"):
        render_trex_config(["3b:00.0"])
    config = TrexServerConfig.for_generator(profile.generator)
    assert (config.rpc_host, config.rpc_port) == ("trex-01.lab.example", 4501)


def test_a_reused_pid_is_not_the_server(host: SshRunner, tmp_path: Path) -> None:
    # the server is gone and its pid now belongs to another process: never signal it
    stranger = subprocess.Popen(["sleep", "30"])
    try:
        config = server_config(tmp_path, free_port())
        (tmp_path / "trex.pid").write_text(f"{stranger.pid} 12345\n")
        server = TrexServer(host, config)
        assert server.alive(stranger.pid) and server.pid() is None
        assert server.stop() is False
        assert stranger.poll() is None
        server.start()  # not "already running"
        server.stop()
    finally:
        stranger.kill()
        stranger.wait()
