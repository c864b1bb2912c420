"""``cnfbench run`` and ``cnfbench sweep``."""

from __future__ import annotations

from pathlib import Path

import click

from bench.commands.common import not_built
from bench.profiles import demo_run_profile, load_run, summarize


@click.command("run")
@click.argument("run_profile", required=False, type=click.Path(path_type=Path))
@click.option("--resume", "resume", metavar="RUN_ID", help="Continue an interrupted run.")
@click.option("--require-tier", type=click.Choice(["bronze", "silver", "gold"]))
@click.option("--plan", "plan_only", is_flag=True, help="Print the plan and stop.")
def run_command(
    run_profile: Path | None, resume: str | None, require_tier: str | None, plan_only: bool
) -> None:
    """Run a full benchmark: sweep, checks, tier and annex.

    With no RUN_PROFILE, runs the bundled demo on an ephemeral embedded lab.
    """
    bundle = load_run(run_profile or demo_run_profile())
    for loaded in bundle.all:
        click.echo(f"{loaded.path}: {summarize(loaded.profile)}")
    if not plan_only:
        raise not_built("running a sweep")


@click.command("sweep")
@click.argument("run_profile", required=False, type=click.Path(path_type=Path))
def sweep_command(run_profile: Path | None) -> None:
    """Run the performance sweep only (no checks)."""
    raise not_built("cnfbench sweep")
