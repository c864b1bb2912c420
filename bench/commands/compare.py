"""``cnfbench compare``: NDR/PDR side by side across runs, and a comparison annex."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from analysis import load_runs
from analysis.annex import AnnexParameters, render_annex
from analysis.compare import comparison_frame, side_by_side
from analysis.loader import find_run_dirs
from bench.schemas import validate


@click.command("compare")
@click.argument("runs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--force", is_flag=True, help="Compare runs of different testbeds anyway.")
@click.option("--baseline", metavar="VENDOR", help="Vendor the ratios refer to.")
@click.option("--annex", "annex_dir", type=click.Path(path_type=Path),
              help="Also render a comparison annex into this directory.")  # fmt: skip
def compare_command(
    runs: tuple[Path, ...], force: bool, baseline: str | None, annex_dir: Path | None
) -> None:
    """Compare NDR/PDR per point across RUNS (run directories or results roots).

    Runs of different testbeds (by their fingerprint) are refused unless --force.
    """
    run_set = load_runs(sorted({p.resolve() for p in find_run_dirs(runs)}))
    frame = comparison_frame(run_set, baseline, force=force)
    wide = side_by_side(frame)
    vendors = run_set.runs.set_index("run_id")["vendor"].to_dict()
    table = Table(title="NDR / PDR (Mpps) per point", show_lines=False)
    for column in ("replicas", "frame", "flows", "dir"):
        table.add_column(column, justify="right")
    value_columns = [c for c in wide.columns if c.endswith("(Mpps)")]
    for column in value_columns:
        goal, run_id = column.split(" ", 2)[:2]
        header = f"{goal}\n{vendors.get(run_id, '')}\n{run_id}"
        table.add_column(header, justify="right", overflow="fold")
    for row in wide.itertuples(index=False):
        values = list(row)
        cells = [str(v) for v in values[:4]] + [f"{float(v):.3f}" for v in values[4:]]
        table.add_row(*cells)
    Console(width=max(120, 24 * len(value_columns) + 40)).print(table)
    if annex_dir is not None:
        params = AnnexParameters(baseline_vendor=baseline, force=force)
        annex = render_annex(list(run_set.directories.values()), annex_dir, params)
        summary = annex.directory / "summary.json"
        validate("annex", json.loads(summary.read_text(encoding="utf-8")), str(summary))
        click.echo(str(annex.directory / "index.html"))
