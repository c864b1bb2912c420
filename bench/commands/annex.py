"""``cnfbench annex``: render and verify the performance annex.

``cnfbench annex RUN_DIR`` renders ``RUN_DIR/annex``; ``cnfbench annex verify DIR``
recomputes the hashes of an annex's data files and re-derives its summary.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from analysis.annex import AnnexParameters, AnnexVerifyError, render_annex, verify_annex
from bench.schemas import validate


class AnnexGroup(click.Group):
    """A group whose default subcommand is ``render``: ``annex RUN_DIR`` renders."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        first = next((a for a in args if not a.startswith("-")), None)
        if first is not None and first not in self.commands:
            args = ["render", *args]
        return super().parse_args(ctx, args)


@click.group("annex", cls=AnnexGroup)
def annex_group() -> None:
    """Render the annex of a run (`annex RUN_DIR`) or verify one (`annex verify DIR`)."""


@annex_group.command("render")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--out", "out_dir", type=click.Path(path_type=Path), help="Default: RUN_DIR/annex.")
@click.option("--bootstrap", "bootstrap_samples", default=1000, show_default=True,
              type=click.IntRange(min=10), help="Bootstrap resamples per fit.")  # fmt: skip
@click.option("--seed", default=0, show_default=True, help="Seed of the bootstrap.")
def render_command(run_dir: Path, out_dir: Path | None, bootstrap_samples: int, seed: int) -> None:
    """Render the annex of RUN_DIR: index.html, annex.pdf, summary.json, figures/."""
    params = AnnexParameters(bootstrap_samples=bootstrap_samples, seed=seed)
    annex = render_annex(run_dir, out_dir, params)
    summary = annex.directory / "summary.json"
    validate("annex", json.loads(summary.read_text(encoding="utf-8")), str(summary))
    for name in ("index.html", "annex.pdf", "summary.json"):
        click.echo(str(annex.directory / name))


@annex_group.command("verify")
@click.argument("annex_dir", type=click.Path(path_type=Path))
def verify_command(annex_dir: Path) -> None:
    """Recompute the hashes of DIR's data files and re-derive its summary; exit 1 on any
    difference."""
    try:
        result = verify_annex(annex_dir)
    except AnnexVerifyError as exc:
        for problem in exc.problems:
            click.echo(f"{annex_dir}: {problem}", err=True)
        raise
    click.echo(
        f"{annex_dir}: verified: {result.data_files} data files of {result.runs} run(s) "
        f"match their hashes, {result.outputs} rendered files unchanged, summary re-derived"
    )
