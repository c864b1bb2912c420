"""The controller's side of the embedded lab: start it, find its endpoints, stop it.

The lab is "hardware": the controller never imports it.  `start_lab` runs ``python -m
lab up`` as a separate process in its own session (so no signal meant for the lab or
sent by a generator client reaches the controller's process group), waits until the
lab has written ``<state-dir>/state.json`` and returns a `LabHandle` with the
endpoints.  `stop_lab` sends SIGTERM to the pid in ``state.json`` and waits until the
process is gone and the file withdrawn.

The default state directory is per user: ``$XDG_STATE_HOME/cnfbench/lab``, else
``~/.local/state/cnfbench/lab``.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from bench.errors import BenchError, InputError

log = logging.getLogger(__name__)

STATE_FILE = "state.json"
LOG_FILE = "lab.log"
STATE_SCHEMA_VERSION = 1


class LabError(BenchError):
    """The embedded lab could not be started, reached or stopped."""


class LabNotRunning(LabError):
    pass


def default_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "cnfbench" / "lab"


@dataclass(frozen=True)
class LabEndpoints:
    """What a running lab published in its state.json."""

    state_dir: Path
    pid: int
    seed: int
    time_scale: float
    trex_host: str
    trex_sync_port: int
    trex_async_port: int
    control_url: str | None
    services: dict[str, dict[str, Any]] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_state(cls, state_dir: Path, data: Any) -> LabEndpoints:
        where = state_dir / STATE_FILE
        if not isinstance(data, dict):
            raise LabError(f"{where}: expected a JSON object")
        if data.get("schema_version") != STATE_SCHEMA_VERSION:
            raise LabError(
                f"{where}: schema_version {data.get('schema_version')!r} is not "
                f"{STATE_SCHEMA_VERSION}; stop that lab with a matching cnfbench"
            )
        try:
            trex = data["trex"]
            control = data.get("control") or {}
            return cls(
                state_dir=state_dir,
                pid=int(data["pid"]),
                seed=int(data["seed"]),
                time_scale=float(data["time_scale"]),
                trex_host=str(trex["host"]),
                trex_sync_port=int(trex["sync_port"]),
                trex_async_port=int(trex["async_port"]),
                control_url=control.get("url"),
                services=dict(data.get("services") or {}),
                raw=data,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise LabError(f"{where}: missing or bad field: {exc}") from exc


class LabHandle:
    """A running lab: its endpoints, and `stop()`.  A context manager."""

    def __init__(self, endpoints: LabEndpoints, process: subprocess.Popen[bytes] | None) -> None:
        self.endpoints = endpoints
        self.process = process

    @property
    def state_dir(self) -> Path:
        return self.endpoints.state_dir

    def control(self, path: str, body: dict[str, Any] | None = None) -> Any:
        """Call the lab's control channel (tests and benchmarks; never for measuring)."""
        if not self.endpoints.control_url:
            raise LabError("this lab publishes no control channel")
        return control_request(self.endpoints.control_url, path, body)

    def alive(self) -> bool:
        return _pid_alive(self.endpoints.pid)

    def stop(self, timeout_s: float = 10.0) -> None:
        stop_lab(self.state_dir, timeout_s=timeout_s)
        if self.process is not None:
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=timeout_s)

    def __enter__(self) -> LabHandle:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start_lab(
    state_dir: Path | None = None,
    *,
    seed: int = 1,
    time_scale: float = 200.0,
    vendor: str = "vpp-router",
    replicas: int = 1,
    noise: bool = True,
    trex_api: str = "auto",
    trex_sync_port: int = 0,
    trex_async_port: int = 0,
    extra_args: Sequence[str] = (),
    timeout_s: float = 30.0,
) -> LabHandle:
    """Start a lab as a separate process and wait until its servers listen."""
    state_dir = (state_dir or default_state_dir()).resolve()
    if time_scale <= 0:
        raise InputError(f"time scale must be positive, got {time_scale}")
    existing = _read_state_file(state_dir)
    if existing is not None and _pid_alive(int(existing.get("pid", -1))):
        raise LabError(
            f"a lab is already running in {state_dir} (pid {existing['pid']}); "
            "stop it with `cnfbench lab down` or use another --state-dir"
        )
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / STATE_FILE).unlink(missing_ok=True)
    argv = [
        sys.executable,
        "-m",
        "lab",
        "up",
        "--state-dir",
        str(state_dir),
        "--seed",
        str(seed),
        "--time-scale",
        str(time_scale),
        "--vendor",
        vendor,
        "--replicas",
        str(replicas),
        "--trex-api",
        trex_api,
        "--trex-sync-port",
        str(trex_sync_port),
        "--trex-async-port",
        str(trex_async_port),
        *([] if noise else ["--no-noise"]),
        *extra_args,
    ]
    log_path = state_dir / LOG_FILE
    with log_path.open("ab") as log_file:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        endpoints = _wait_for_state(state_dir, process, timeout_s)
    except KeyboardInterrupt:
        _terminate(process)
        raise
    log.info(
        "lab up (pid %d): TRex %s:%d/%d",
        endpoints.pid,
        endpoints.trex_host,
        endpoints.trex_sync_port,
        endpoints.trex_async_port,
    )
    return LabHandle(endpoints, process)


def _wait_for_state(
    state_dir: Path, process: subprocess.Popen[bytes], timeout_s: float
) -> LabEndpoints:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        data = _read_state_file(state_dir)
        if data is not None and data.get("pid") == process.pid:
            return LabEndpoints.from_state(state_dir, data)
        if process.poll() is not None:
            raise LabError(
                f"the lab exited with status {process.returncode} before it was ready: "
                f"{_log_tail(state_dir)}"
            )
        time.sleep(0.05)
    _terminate(process)
    raise LabError(f"the lab was not ready within {timeout_s:g} s: {_log_tail(state_dir)}")


def _terminate(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the lab (it withdraws its state.json), SIGKILL it if it lingers."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def read_lab(state_dir: Path | None = None) -> LabEndpoints:
    """The endpoints of the lab running in `state_dir`; LabNotRunning when there is none."""
    state_dir = (state_dir or default_state_dir()).resolve()
    data = _read_state_file(state_dir)
    if data is None:
        raise LabNotRunning(f"no lab is running in {state_dir} (no {STATE_FILE})")
    endpoints = LabEndpoints.from_state(state_dir, data)
    if not _pid_alive(endpoints.pid):
        raise LabNotRunning(
            f"the lab in {state_dir} is gone (pid {endpoints.pid}); "
            "`cnfbench lab down` clears its state"
        )
    return endpoints


def stop_lab(state_dir: Path | None = None, timeout_s: float = 10.0) -> bool:
    """Stop the lab in `state_dir`; False when none was running.  Raises when it stays."""
    state_dir = (state_dir or default_state_dir()).resolve()
    data = _read_state_file(state_dir)
    if data is None:
        return False
    pid = int(data.get("pid", -1))
    if not _pid_alive(pid):
        (state_dir / STATE_FILE).unlink(missing_ok=True)
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not _pid_alive(pid):
            (state_dir / STATE_FILE).unlink(missing_ok=True)
            return True
        time.sleep(0.05)
    raise LabError(f"the lab (pid {pid}) did not stop within {timeout_s:g} s of SIGTERM")


def control_request(base_url: str, path: str, body: dict[str, Any] | None = None) -> Any:
    """One JSON request to a lab control channel (GET without a body, POST with one)."""
    if not base_url.startswith("http://127.0.0.1:"):
        raise LabError(f"refusing a lab control URL off loopback: {base_url}")
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        base_url + path,
        data=data,
        method="GET" if body is None else "POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")
        raise LabError(f"lab control {path}: HTTP {exc.code}: {detail}") from exc
    except urllib.error.URLError as exc:
        raise LabError(f"lab control {path}: {exc.reason}") from exc


def _read_state_file(state_dir: Path) -> dict[str, Any] | None:
    path = state_dir / STATE_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise LabError(f"{path}: cannot read the lab's state: {exc}") from exc
    return data if isinstance(data, dict) else None


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); reap it if it is ours.
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return _not_zombie(pid)
    return done == 0


def _not_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _log_tail(state_dir: Path, lines: int = 3) -> str:
    try:
        text = (state_dir / LOG_FILE).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)"
    kept = [line for line in text.splitlines() if line.strip()]
    errors = [line for line in kept if "error" in line.lower()]
    tail = (errors or kept)[-lines:]
    return " | ".join(line[:300] for line in tail) or "(empty log)"
