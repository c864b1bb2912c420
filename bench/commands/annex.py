"""``cnfbench annex``: render and verify the performance annex."""

from __future__ import annotations

import click

from bench.commands.common import not_built


@click.group("annex", invoke_without_command=True)
@click.pass_context
def annex_group(ctx: click.Context) -> None:
    """Render the annex of a run (`annex RUN`) or verify one (`annex verify DIR`)."""
    if ctx.invoked_subcommand is None:
        raise not_built("cnfbench annex")
