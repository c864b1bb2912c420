"""Testbed hosts: SSH sessions, fingerprints, comparison with the profile, TRex server.

The public surface:

- `SshTarget`, `connect` (an `SshRunner`), `LocalRunner`: where commands run;
- `collect_fingerprint`, `local_fingerprint`, `Fingerprint`, `manifest_fingerprint`;
- `compare`, `Comparison`, `Status`, `has_mismatch`, `comparison_table`, `comparable`;
- `TrexServer`, `TrexServerConfig` (in `bench.hosts.trex`): the TRex server's lifecycle;
- `probe_testbed`, `fingerprint_testbed` (in `bench.hosts.probe`): a testbed at once.
"""

from __future__ import annotations

from bench.hosts.compare import (
    Comparison,
    Status,
    comparable,
    compare,
    comparison_table,
    has_mismatch,
)
from bench.hosts.errors import (
    HardwareMismatch,
    HostAuthFailed,
    HostError,
    HostKeyChanged,
    HostKeyError,
    HostKeyUnknown,
    HostUnreachable,
    RemoteCommandFailed,
    TrexServerError,
    TrexStartFailed,
)
from bench.hosts.fingerprint import (
    Fingerprint,
    collect_fingerprint,
    local_fingerprint,
    manifest_fingerprint,
)
from bench.hosts.runner import CommandResult, HostFS, LocalRunner, Runner
from bench.hosts.ssh import SshRunner, SshTarget, connect

__all__ = [
    "CommandResult",
    "Comparison",
    "Fingerprint",
    "HardwareMismatch",
    "HostAuthFailed",
    "HostError",
    "HostFS",
    "HostKeyChanged",
    "HostKeyError",
    "HostKeyUnknown",
    "HostUnreachable",
    "LocalRunner",
    "RemoteCommandFailed",
    "Runner",
    "SshRunner",
    "SshTarget",
    "Status",
    "TrexServerError",
    "TrexStartFailed",
    "collect_fingerprint",
    "comparable",
    "compare",
    "comparison_table",
    "connect",
    "has_mismatch",
    "local_fingerprint",
    "manifest_fingerprint",
]
