"""``cnfbench lab``: the embedded lab."""

from __future__ import annotations

import click

from bench.commands.common import not_built


@click.group("lab")
def lab_group() -> None:
    """Start, inspect and stop the embedded lab."""


@lab_group.command("up")
def up_command() -> None:
    """Start the embedded lab on loopback."""
    raise not_built("cnfbench lab up")
