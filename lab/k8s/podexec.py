"""``pods/exec`` over WebSocket (RFC 6455) with the channel protocols of kube-apiserver.

Clients (the official client's ``stream``, kubectl) upgrade the request to a WebSocket
speaking ``v5.channel.k8s.io`` or ``v4.channel.k8s.io``: every binary message starts
with a channel byte (0 stdin, 1 stdout, 2 stderr, 3 error/status, 255 close in v5), and
the last message on channel 3 is a ``Status`` carrying the exit code.

The lab's containers are emulations, so only commands with a meaning for them run:
``kill [-SIGNAL] 1`` (STOP hangs the application so that its probes fail; KILL, TERM and
INT end the process, which the kubelet restarts), ``true`` and ``false``.  Anything else
exits 126 with a message saying it is not supported, never a pretend success.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

log = logging.getLogger(__name__)

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 §1.3
PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
STDOUT, STDERR, ERROR = 1, 2, 3
SIGNALS = {"STOP": 19, "KILL": 9, "TERM": 15, "INT": 2, "CONT": 18}


@dataclass(frozen=True)
class ExecOutcome:
    exit_code: int
    stdout: str = ""
    stderr: str = ""


Signal = Callable[[int], str | None]  # signal number -> error text, None when delivered


def run_command(command: list[str], signal_pid1: Signal) -> ExecOutcome:
    """What the emulated container does with `command`."""
    if command == ["true"]:
        return ExecOutcome(0)
    if command == ["false"]:
        return ExecOutcome(1)
    if command and command[0] == "kill" and command[-1] == "1" and len(command) in (2, 3):
        name = command[1].lstrip("-").upper().removeprefix("SIG") if len(command) == 3 else "TERM"
        number = int(name) if name.isdigit() else SIGNALS.get(name)
        if number is None or number not in SIGNALS.values():
            return ExecOutcome(1, stderr=f"kill: invalid signal {command[1]}\n")
        problem = signal_pid1(number)
        if problem:
            return ExecOutcome(1, stderr=f"kill: (1) - {problem}\n")
        return ExecOutcome(0)
    return ExecOutcome(
        126,
        stderr=f"lab: {' '.join(command)!r}: only 'kill [-SIGNAL] 1', 'true' and 'false' run "
        "in the lab's emulated containers\n",
    )


def accept_key(key: str) -> str:
    # RFC 6455 §4.2.2 defines the accept value with SHA-1; it is no security measure here.
    digest = hashlib.sha1((key + GUID).encode()).digest()
    return base64.b64encode(digest).decode()


def choose_protocol(offered: str) -> str | None:
    names = [p.strip() for p in offered.split(",")]
    return next((p for p in PROTOCOLS if p in names), None)


def frame(payload: bytes, opcode: int = 2) -> bytes:
    """One unmasked server frame (RFC 6455 §5.2)."""
    head = bytes([0x80 | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([n])
    elif n < 1 << 16:
        head += bytes([126]) + struct.pack("!H", n)
    else:
        head += bytes([127]) + struct.pack("!Q", n)
    return head + payload


def status_message(outcome: ExecOutcome) -> bytes:
    if outcome.exit_code == 0:
        status: dict[str, Any] = {"metadata": {}, "status": "Success"}
    else:
        status = {
            "metadata": {},
            "status": "Failure",
            "message": f"command terminated with non-zero exit code: exit status "
            f"{outcome.exit_code}",
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": str(outcome.exit_code)}]},
        }
    return json.dumps(status).encode()


class Writer(Protocol):
    def write(self, data: bytes, /) -> Any: ...

    def flush(self) -> Any: ...


def send_outcome(out: Writer, outcome: ExecOutcome) -> None:
    if outcome.stdout:
        out.write(frame(bytes([STDOUT]) + outcome.stdout.encode()))
    if outcome.stderr:
        out.write(frame(bytes([STDERR]) + outcome.stderr.encode()))
    out.write(frame(bytes([ERROR]) + status_message(outcome)))
    out.write(frame(struct.pack("!H", 1000), opcode=8))  # close, normal
    out.flush()
