"""``cnfbench compare``: NDR/PDR side by side across runs."""

from __future__ import annotations

import click

from bench.commands.common import not_built


@click.command("compare")
@click.argument("runs", nargs=-1)
def compare_command(runs: tuple[str, ...]) -> None:
    """Compare NDR/PDR per point across RUNS."""
    raise not_built("cnfbench compare")
