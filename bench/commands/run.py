"""``cnfbench run`` and ``cnfbench sweep``."""

from __future__ import annotations

from pathlib import Path

import click

from bench.errors import TierNotReached
from bench.profiles import demo_run_profile
from bench.report import print_outcome
from bench.runner import RunOptions, execute


def _options(f: click.decorators.FC) -> click.decorators.FC:
    f = click.option("--resume", metavar="RUN_ID", help="Continue an interrupted run.")(f)
    f = click.option(
        "--results-dir",
        type=click.Path(path_type=Path, file_okay=False),
        help="Where run directories go (default: the run profile's results_dir).",
    )(f)
    f = click.option(
        "--force",
        is_flag=True,
        help="Resume although profiles or the testbed fingerprint changed.",
    )(f)
    f = click.option("--plan", "plan_only", is_flag=True, help="Print the plan and stop.")(f)
    return click.argument("run_profile", required=False, type=click.Path(path_type=Path))(f)


@click.command("run")
@_options
@click.option(
    "--require-tier",
    type=click.Choice(["bronze", "silver", "gold"]),
    help="Exit 3 unless the run reaches this tier.",
)
@click.option("--no-annex", is_flag=True, help="Do not render the annex at the end.")
def run_command(
    *,
    run_profile: Path | None,
    resume: str | None,
    results_dir: Path | None,
    force: bool,
    plan_only: bool,
    require_tier: str | None,
    no_annex: bool,
) -> None:
    """Run a full benchmark: sweep, conformance checks, tier and annex.

    With no RUN_PROFILE, runs the bundled demo (a VPP-like router) on an ephemeral
    embedded lab.
    """
    options = RunOptions(
        resume=resume,
        force=force,
        require_tier=require_tier,
        plan_only=plan_only,
        results_dir=results_dir,
        annex=not no_annex,
    )
    outcome = execute(run_profile or demo_run_profile(), options)
    print_outcome(outcome)
    if require_tier and not outcome.tier_reached(require_tier):
        raise TierNotReached(
            f"the run reached {outcome.tier or 'no tier'}, not {require_tier}: "
            f"see {outcome.run_dir}/tiers.json for what blocked it"
        )


@click.command("sweep")
@_options
def sweep_command(
    *,
    run_profile: Path | None,
    resume: str | None,
    results_dir: Path | None,
    force: bool,
    plan_only: bool,
) -> None:
    """Run the performance sweep only (no conformance checks, no tier)."""
    options = RunOptions(
        resume=resume,
        force=force,
        checks=False,
        plan_only=plan_only,
        results_dir=results_dir,
        annex=False,
    )
    print_outcome(execute(run_profile or demo_run_profile(), options))
