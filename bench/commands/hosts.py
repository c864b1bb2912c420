"""``cnfbench hosts``: testbed hosts over SSH."""

from __future__ import annotations

import click

from bench.commands.common import not_built


@click.group("hosts")
def hosts_group() -> None:
    """Probe testbed hosts and manage the TRex server."""


@hosts_group.command("probe")
@click.argument("testbed")
def probe_command(testbed: str) -> None:
    """Fingerprint the hosts of TESTBED and compare them with its expected hardware."""
    raise not_built("cnfbench hosts probe")
