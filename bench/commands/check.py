"""``cnfbench check``: functional conformance checks."""

from __future__ import annotations

import click

from bench.commands.common import not_built


@click.command("check")
@click.argument("target", required=False)
def check_command(target: str | None) -> None:
    """Run conformance checks on a CNF profile, chart or cnf-testsuite.yml."""
    raise not_built("cnfbench check")
