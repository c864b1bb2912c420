"""``cnfbench profiles``: validate profile files."""

from __future__ import annotations

from pathlib import Path

import click

from bench.errors import ProfileError
from bench.profiles import validate_files


@click.group("profiles")
def profiles_group() -> None:
    """Work with profiles (traffic, testbed, CNF, tiers, run)."""


@profiles_group.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
def validate_command(files: tuple[Path, ...]) -> None:
    """Validate profile FILES; print a summary line per valid file.

    Problems are printed as `file:line: field.path: message`, and the exit status is 2
    when there is any.
    """
    summaries, problems = validate_files(files)
    for line in summaries:
        click.echo(line)
    if problems:
        raise ProfileError(problems)
