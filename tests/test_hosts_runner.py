"""Runners and host filesystems on this machine: commands, errors, batched reads."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from bench.hosts import LocalRunner, RemoteCommandFailed, collect_fingerprint, local_fingerprint
from bench.hosts.runner import CommandResult, ExecFS, LocalFS, join_root, write_file

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "hosts"


class RecordingRunner(LocalRunner):
    """This machine, remembering each command it runs."""

    def __init__(self) -> None:
        super().__init__("recording")
        self.commands: list[str] = []

    def run(self, command: str, **kwargs: Any) -> CommandResult:
        self.commands.append(command)
        return super().run(command, **kwargs)


def test_local_runner_results_and_errors() -> None:
    runner = LocalRunner()
    result = runner.run("echo out; echo err >&2")
    assert (result.stdout, result.stderr, result.ok) == ("out\n", "err\n", True)
    assert runner.run("cat", stdin=b"abc").stdout == "abc"
    with pytest.raises(
        RemoteCommandFailed, match=r"localhost: command 'exit 4' exited with status 4"
    ):
        runner.run("exit 4")
    assert runner.run("exit 4", check=False).exit_status == 4
    with pytest.raises(RemoteCommandFailed, match="did not finish"):
        runner.run("sleep 5", timeout_s=0.2)


def test_write_file_replaces_atomically(tmp_path: Path) -> None:
    target = tmp_path / "f"
    target.write_text("old")
    write_file(LocalRunner(), str(target), "new\n")
    assert target.read_text() == "new\n" and sorted(tmp_path.iterdir()) == [target]
    with pytest.raises(RemoteCommandFailed):
        write_file(LocalRunner(), str(tmp_path / "no" / "dir" / "f"), "x")


def test_join_root() -> None:
    assert join_root("/", "/proc/cmdline") == "/proc/cmdline"
    assert join_root("/srv/tree/", "/proc/cmdline") == "/srv/tree/proc/cmdline"
    with pytest.raises(ValueError, match="absolute"):
        join_root("/", "proc")


def test_batched_reads_match_direct_reads_under_an_awkward_root(tmp_path: Path) -> None:
    # a space and a quote in the root: the literal parts of each glob must stay quoted
    for name in ("e810-sriov", "cx6-sriov"):
        root = tmp_path / "it's a tree" / name
        shutil.copytree(FIXTURES / name, root, symlinks=True)
        direct = local_fingerprint(str(root))
        batched_fs = ExecFS(LocalRunner(), str(root))
        batched = collect_fingerprint(LocalRunner(), fs=batched_fs)
        assert replace(batched, collected_at=0) == replace(direct, collected_at=0)
        # what the batch did not find it knows to be absent, without asking again
        recording = RecordingRunner()
        batched_fs.runner = recording
        assert batched_fs.read_text("/sys/bus/pci/devices/0000:00:00.0/sriov_numvfs") is None
        assert batched_fs.read_text("/etc/not-prefetched") is None
        assert len(recording.commands) == 1 and "not-prefetched" in recording.commands[0]


def test_local_fs_tolerates_what_is_missing(tmp_path: Path) -> None:
    fs = LocalFS(str(tmp_path))
    assert fs.read_text("/nothing") is None
    assert fs.listdir("/nothing") is None
    assert fs.readlink("/nothing") is None


def test_batched_reads_of_this_machine_match_direct_reads() -> None:
    # the real sysfs has quirks fixtures lack (binary attributes, EINVAL on read)
    batched = collect_fingerprint(LocalRunner(), fs=ExecFS(LocalRunner(), "/"))
    assert replace(batched, collected_at=0) == replace(local_fingerprint(), collected_at=0)


def test_a_failed_batch_falls_back_to_reading_path_by_path(tmp_path: Path) -> None:
    class NoShell(RecordingRunner):
        def run(self, command: str, **kwargs: Any) -> CommandResult:
            if command.startswith("sh -c"):
                return CommandResult(command, 127, "", "sh: not found", 0.0)
            return super().run(command, **kwargs)

    runner = NoShell()
    fs = ExecFS(runner, str(FIXTURES / "cx6-sriov"))
    fp = collect_fingerprint(runner, fs=fs)
    assert fp.cpu_model == "AMD EPYC 7543 32-Core Processor"  # read with cat, one by one
    assert len(runner.commands) > 100
