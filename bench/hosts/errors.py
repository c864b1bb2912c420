"""Errors of the host layer: every one is a `BenchError`, so the CLI prints it on one line."""

from __future__ import annotations

from bench.errors import BenchError


class HostError(BenchError):
    """A testbed host could not be reached, authenticated, or did not do what was asked."""


class HostUnreachable(HostError):
    """No SSH session could be opened: refused, timed out, no route, name unknown."""


class HostAuthFailed(HostError):
    """The host refused every credential offered (key file, agent, password)."""


class HostKeyError(HostError):
    """The host's key could not be verified against known_hosts."""


class HostKeyUnknown(HostKeyError):
    """The host is not in known_hosts and trusting a new key was not asked for."""


class HostKeyChanged(HostKeyError):
    """The host presented a key different from the one known_hosts holds for it."""


class RemoteCommandFailed(HostError):
    """A command on the host exited non-zero or did not finish in time."""

    def __init__(self, message: str, exit_status: int | None, stderr: str = "") -> None:
        super().__init__(message)
        self.exit_status = exit_status
        self.stderr = stderr


class TrexServerError(HostError):
    """The TRex server on the generator host could not be configured, started or stopped."""


class TrexStartFailed(TrexServerError):
    """The TRex server exited or never opened its RPC port; `log` holds its output."""

    def __init__(self, message: str, log: str) -> None:
        super().__init__(message)
        self.log = log


class HardwareMismatch(HostError):
    """A probed host differs from the testbed profile's expected hardware."""
