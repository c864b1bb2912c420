"""A request/response channel to a worker subprocess: JSON lines over two pipes.

The worker runs in its own process session (so a client library that signals its
process group hits only itself) and talks on two dedicated pipes, leaving its stdout
and stderr to whatever the client library prints; those are logged at debug level.
Every request has a timeout.  A worker that does not answer in time is killed; a worker
that dies answers with end-of-file; both raise `WorkerLost`, and the channel can be
started again.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Sequence
from typing import Any, NoReturn

from traffic.errors import GeneratorError

log = logging.getLogger(__name__)


class WorkerLost(GeneratorError):
    """The worker died or did not answer in time; it has been stopped."""


class WorkerFailed(GeneratorError):
    """The worker answered with an error (the client library raised)."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


class WorkerChannel:
    """One worker process at a time; `start` it, `request` on it, `stop` it."""

    def __init__(self, module: str, args: Sequence[str], name: str = "worker") -> None:
        self.module = module
        self.args = list(args)
        self.name = name
        self._proc: subprocess.Popen[bytes] | None = None
        self._requests_fd = -1
        self._responses_fd = -1
        self._buffer = b""
        self._next_id = 0
        self._output: deque[str] = deque(maxlen=40)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        if self.alive:
            return
        self._cleanup()
        req_r, req_w = os.pipe()
        resp_r, resp_w = os.pipe()
        argv = [
            sys.executable,
            "-m",
            self.module,
            "--requests-fd",
            str(req_r),
            "--responses-fd",
            str(resp_w),
            *self.args,
        ]
        try:
            self._proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                pass_fds=(req_r, resp_w),
                start_new_session=True,
                close_fds=True,
            )
        finally:
            os.close(req_r)
            os.close(resp_w)
        self._requests_fd, self._responses_fd = req_w, resp_r
        self._buffer = b""
        self._output.clear()
        threading.Thread(target=self._drain, args=(self._proc,), daemon=True).start()
        log.debug("%s started, pid %d", self.name, self._proc.pid)

    def _drain(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip()
            if line:
                self._output.append(line)
                log.debug("%s[%d]: %s", self.name, proc.pid, line)

    def request(self, op: str, timeout_s: float, **args: Any) -> Any:
        """Send one request and return its result; raise on error, death or timeout."""
        if not self.alive:
            raise WorkerLost(f"{self.name} is not running")
        self._next_id += 1
        ident = self._next_id
        line = json.dumps({"id": ident, "op": op, "args": args}) + "\n"
        try:
            os.write(self._requests_fd, line.encode("utf-8"))
        except (BrokenPipeError, OSError) as exc:
            self._lost(f"{self.name} closed its request pipe during {op!r} ({exc})")
        deadline = time.monotonic() + timeout_s
        reply = self._read_reply(op, timeout_s)
        # A request abandoned by the caller (an interrupt while waiting) still gets its
        # answer first; drop such late answers rather than mistake them for this one.
        while isinstance(reply.get("id"), int) and reply["id"] < ident:
            log.debug("%s: dropping the late answer to request %s", self.name, reply["id"])
            reply = self._read_reply(op, max(0.0, deadline - time.monotonic()))
        if reply.get("id") != ident:
            self._lost(f"{self.name} answered request {reply.get('id')} to {ident} ({op!r})")
        if not reply.get("ok"):
            raise WorkerFailed(str(reply.get("error")), str(reply.get("kind", "error")))
        return reply.get("result")

    def _read_reply(self, op: str, timeout_s: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._lost(f"{self.name} did not answer {op!r} within {timeout_s:.1f} s")
            ready, _, _ = select.select([self._responses_fd], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(self._responses_fd, 1 << 20)
            if not chunk:
                self._lost(f"{self.name} died during {op!r}{self._exit_detail()}")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        try:
            reply = json.loads(line)
        except json.JSONDecodeError:
            self._lost(f"{self.name} sent a malformed reply to {op!r}")
        if not isinstance(reply, dict):
            self._lost(f"{self.name} sent a malformed reply to {op!r}")
        return reply

    def _exit_detail(self) -> str:
        if self._proc is None:
            return ""
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._proc.wait(timeout=1.0)
        code = self._proc.returncode
        tail = f"; last output: {self._output[-1]}" if self._output else ""
        return f" (exit status {code}{tail})" if code is not None else tail

    def _lost(self, message: str) -> NoReturn:
        self.kill()
        raise WorkerLost(message)

    def kill(self) -> None:
        """Stop the worker and its process session at once."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5.0)
        self._cleanup()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Ask the worker to close (stop traffic, release ports), then make sure it is gone."""
        if self.alive:
            try:
                self.request("close", timeout_s)
            except GeneratorError as exc:
                log.warning("%s did not close cleanly: %s", self.name, exc)
            if self._proc is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self._proc.wait(timeout=timeout_s)
        self.kill()

    def _cleanup(self) -> None:
        for fd in (self._requests_fd, self._responses_fd):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._requests_fd = self._responses_fd = -1
        if self._proc is not None:
            if self._proc.stdout is not None:
                with contextlib.suppress(OSError):
                    self._proc.stdout.close()
            self._proc = None
