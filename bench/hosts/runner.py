"""Where the host layer runs commands and reads files: this machine, or a host over SSH.

`Runner` is the seam: fingerprint collectors and the TRex lifecycle see only `run` and a
`HostFS`, so the same code reads a live host, a remote one, or a fixture tree under a
root prefix.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import posixpath
import re
import shlex
import subprocess
import time
from collections.abc import Iterable
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

    def prefetch(self, patterns: Iterable[str]) -> None:
        """A hint: these paths (glob patterns) are about to be read."""


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

    def prefetch(self, patterns: Iterable[str]) -> None:
        """Local reads are cheap: nothing to batch."""


# One record per globbed path, NUL-separated: kind, path, value (L: link target,
# F: file content, D: directory listing).  A file that cannot be read gives no F record.
# sysfs files are read and directories listed with shell builtins: a fork per file is
# most of the cost on a host with hundreds of PCI functions.
_PREFETCH_SCRIPT = r"""
lsd() { for e in "$1"/* "$1"/.[!.]* "$1"/..?*; do
  if [ -e "$e" ] || [ -L "$e" ]; then printf '%s\n' "${e##*/}"; fi; done; }
rd() { c= ; l= ; { while IFS= read -r l; do c="$c$l
"; done < "$1"; } 2>/dev/null || return 1; c="$c$l"; }
for p in "$@"; do
  [ -e "$p" ] || [ -L "$p" ] || continue
  [ -L "$p" ] && printf 'L\0%s\0%s\0' "$p" "$(readlink -- "$p")"
  if [ -d "$p" ]; then printf 'D\0%s\0' "$p"; lsd "$p"; printf '\0'
  else
    case $p in
      */sys/*) rd "$p" || continue ;;
      *) c= ;;
    esac
    # some sysfs attributes (binary ones, e.g. node cpulist) read nothing through the
    # builtin, which reads byte by byte: cat them
    if [ -z "$c" ]; then c=$(cat -- "$p" 2>/dev/null) || continue; fi
    printf 'F\0%s\0%s\0' "$p" "$c"
  fi
done
printf 'E\0end\0\0'
"""


def _covered(path: str, patterns: tuple[tuple[str, ...], ...]) -> bool:
    parts = tuple(path.split("/"))
    return any(
        len(parts) == len(pattern) and all(map(fnmatch.fnmatchcase, parts, pattern))
        for pattern in patterns
    )


class ExecFS:
    """A host's files read with ``cat``, ``ls`` and ``readlink`` over any runner.

    The fallback when a host offers no SFTP subsystem.  One command per call costs a
    session each (sshd forks for every one), so `prefetch` reads every path matching a
    set of glob patterns in one command; a path a pattern covers but that matched
    nothing is then known to be absent.
    """

    def __init__(self, runner: Runner, root: str = "/") -> None:
        self.runner = runner
        self.root = root
        self._records: dict[tuple[str, str], str] = {}
        self._patterns: tuple[tuple[str, ...], ...] = ()

    def prefetch(self, patterns: Iterable[str]) -> None:
        """Read every path matching ``patterns`` (host paths with ``*`` and ``?``)."""
        patterns = tuple(patterns)
        prefix = "" if self.root in ("", "/") else shlex.quote(self.root.rstrip("/"))
        # the globs stay unquoted so the remote shell expands them
        words = " ".join(prefix + _glob_word(p) for p in patterns)
        # run by sh whatever the login shell; the globs expand inside it
        script = shlex.quote(f"set -- {words}\n{_PREFETCH_SCRIPT}")
        result = self.runner.run(f"sh -c {script}", check=False, timeout_s=120.0)
        if not result.stdout.endswith("E\0end\0\0"):
            # the batch did not run to its end: read path by path instead
            log.warning(
                "%s: batched read failed (status %d): %s",
                self.runner.name,
                result.exit_status,
                result.stderr.strip()[-200:],
            )
            return
        fields = result.stdout.split("\0")
        strip = len(self.root.rstrip("/")) if prefix else 0
        for kind, path, value in zip(fields[0::3], fields[1::3], fields[2::3], strict=False):
            self._records[(kind, path[strip:])] = value
        self._patterns += tuple(tuple(p.split("/")) for p in patterns)
        log.debug("%s: prefetched %d paths", self.runner.name, len(self._records))

    def _cached(self, kind: str, path: str) -> tuple[bool, str | None]:
        if (kind, path) in self._records:
            return True, self._records[(kind, path)]
        return _covered(path, self._patterns), None

    def _out(self, command: str) -> str | None:
        result = self.runner.run(command, check=False)
        return result.stdout if result.ok else None

    def read_text(self, path: str) -> str | None:
        known, value = self._cached("F", path)
        if known:
            return value
        return self._out(f"cat -- {shlex.quote(join_root(self.root, path))}")

    def listdir(self, path: str) -> list[str] | None:
        known, out = self._cached("D", path)
        if not known:
            out = self._out(f"ls -1A -- {shlex.quote(join_root(self.root, path))}")
        return None if out is None else sorted(line for line in out.splitlines() if line)

    def readlink(self, path: str) -> str | None:
        known, value = self._cached("L", path)
        if known:
            return value
        out = self._out(f"readlink -- {shlex.quote(join_root(self.root, path))}")
        return None if out is None else out.rstrip("\n")


def _glob_word(pattern: str) -> str:
    """A host path pattern as one shell word: literal parts quoted, ``*``/``?`` bare."""
    if not pattern.startswith("/") or any(c in pattern for c in "[]{}"):
        raise ValueError(f"prefetch patterns are absolute and use only * and ?: {pattern!r}")
    pieces = re.split(r"([*?])", pattern)
    return "".join(p if p in ("*", "?") else shlex.quote(p) for p in pieces if p)


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
