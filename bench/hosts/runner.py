"""Where the host layer runs commands and reads files: this machine, or a host over SSH.

`Runner` is the seam: fingerprint collectors and the TRex lifecycle see only `run` and a
`HostFS`, so the same code reads a live host, a remote one, or a fixture tree under a
root prefix.
"""

from __future__ import annotations

import logging
import os
import posixpath
import shlex
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from bench.hosts.errors import RemoteCommandFailed

log = logging.getLogger(__name__)

DEFAULT_COMMAND_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class CommandResult:
    command: str
    exit_status: int
    stdout: str
    stderr: str
    duration_s: float

    @property
    def ok(self) -> bool:
        return self.exit_status == 0


def check_result(host: str, result: CommandResult) -> CommandResult:
    """Raise `RemoteCommandFailed` naming the host, the command and its stderr tail."""
    if result.ok:
        return result
    tail = " | ".join(result.stderr.strip().splitlines()[-3:]) or "no output on stderr"
    raise RemoteCommandFailed(
        f"{host}: command {result.command!r} exited with status {result.exit_status}: {tail}",
        result.exit_status,
        result.stderr,
    )


def write_file(runner: Runner, path: str, text: str, mode: int = 0o644) -> None:
    """Write ``text`` to ``path`` on the runner's host: a temp file beside it, then a
    rename, so a reader never sees half a file."""
    tmp = shlex.quote(f"{path}.tmp-cnfbench")
    runner.run(
        f"umask 077 && cat > {tmp} && chmod {mode:o} {tmp} && mv -f {tmp} {shlex.quote(path)}",
        stdin=text.encode(),
    )


class HostFS(Protocol):
    """Read-only view of a host's files; every path is absolute on the host.

    Each method returns None for what is missing or unreadable, because a host lacking a
    file is a fact to record, not an error.
    """

    root: str

    def read_text(self, path: str) -> str | None: ...

    def listdir(self, path: str) -> list[str] | None: ...

    def readlink(self, path: str) -> str | None: ...


class Runner(Protocol):
    """A host the controller can run commands on and read files from."""

    @property
    def name(self) -> str: ...

    def run(
        self,
        command: str,
        *,
        timeout_s: float | None = None,
        check: bool = True,
        stdin: bytes | None = None,
    ) -> CommandResult: ...

    def filesystem(self, root: str = "/") -> HostFS: ...

    def close(self) -> None: ...


def join_root(root: str, path: str) -> str:
    """``path`` (absolute on the host) under ``root``; ``/`` leaves it unchanged."""
    if not path.startswith("/"):
        raise ValueError(f"host paths are absolute, got {path!r}")
    if root in ("", "/"):
        return path
    return posixpath.join(root.rstrip("/"), path.lstrip("/"))


class LocalFS:
    """This machine's files, or a fixture tree when ``root`` is a directory."""

    def __init__(self, root: str = "/") -> None:
        self.root = root

    def read_text(self, path: str) -> str | None:
        try:
            return Path(join_root(self.root, path)).read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None

    def listdir(self, path: str) -> list[str] | None:
        try:
            return sorted(os.listdir(join_root(self.root, path)))
        except OSError:
            return None

    def readlink(self, path: str) -> str | None:
        try:
            return os.readlink(join_root(self.root, path))
        except OSError:
            return None


class ExecFS:
    """A host's files read with ``cat``, ``ls`` and ``readlink`` over any runner.

    The fallback when a host offers no SFTP subsystem; one command per call.
    """

    def __init__(self, runner: Runner, root: str = "/") -> None:
        self.runner = runner
        self.root = root

    def _out(self, command: str) -> str | None:
        result = self.runner.run(command, check=False)
        return result.stdout if result.ok else None

    def read_text(self, path: str) -> str | None:
        return self._out(f"cat -- {shlex.quote(join_root(self.root, path))}")

    def listdir(self, path: str) -> list[str] | None:
        out = self._out(f"ls -1A -- {shlex.quote(join_root(self.root, path))}")
        return None if out is None else sorted(line for line in out.splitlines() if line)

    def readlink(self, path: str) -> str | None:
        out = self._out(f"readlink -- {shlex.quote(join_root(self.root, path))}")
        return None if out is None else out.rstrip("\n")


class LocalRunner:
    """Commands through ``/bin/sh`` on this machine: the embedded lab's own host."""

    def __init__(self, name: str = "localhost") -> None:
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    def run(
        self,
        command: str,
        *,
        timeout_s: float | None = None,
        check: bool = True,
        stdin: bytes | None = None,
    ) -> CommandResult:
        timeout_s = DEFAULT_COMMAND_TIMEOUT_S if timeout_s is None else timeout_s
        started = time.monotonic()
        try:
            proc = subprocess.run(
                command,
                shell=True,
                input=stdin if stdin is not None else b"",
                capture_output=True,
                timeout=timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise RemoteCommandFailed(
                f"{self._name}: command {command!r} did not finish within {timeout_s:g} s",
                None,
            ) from exc
        result = CommandResult(
            command,
            proc.returncode,
            proc.stdout.decode("utf-8", "replace"),
            proc.stderr.decode("utf-8", "replace"),
            time.monotonic() - started,
        )
        return check_result(self._name, result) if check else result

    def filesystem(self, root: str = "/") -> HostFS:
        return LocalFS(root)

    def close(self) -> None:
        """Nothing to release for this machine."""
