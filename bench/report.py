"""What a run prints on stdout when it ends: the summary table and where results are."""

from __future__ import annotations

import math
from typing import Any

import click
from rich.console import Console
from rich.table import Table

import analysis
from analysis.summary import run_summary
from bench.runner import RunOutcome


def _cell(value: Any, fmt: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return format(value, fmt)


def summary_table(outcome: RunOutcome) -> Table | None:
    if outcome.run_dir is None:
        return None
    runs = analysis.load_runs(outcome.run_dir)
    run_id = next(iter(runs.manifests))
    frame = run_summary(runs, run_id)
    table = Table(title=f"{run_id}: throughput, scaling, latency and sessions")
    for name, justify in (
        ("replicas", "right"),
        ("frame", "left"),
        ("flows", "right"),
        ("dir", "left"),
        ("NDR Mpps", "right"),
        ("PDR Mpps", "right"),
        ("NDR Gbps", "right"),
        ("PDR Gbps", "right"),
        ("E(R)", "right"),
        ("p50/p99 µs @50%", "right"),
        ("p50/p99 µs @90%", "right"),
        ("sessions", "right"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for row in frame.itertuples(index=False):
        table.add_row(
            str(row.replicas),
            str(row.frame_size),
            str(row.flows),
            str(row.direction),
            _cell(row.ndr_mpps, ".3f"),
            _cell(row.pdr_mpps, ".3f"),
            _cell(row.ndr_gbps, ".2f"),
            _cell(row.pdr_gbps, ".2f"),
            _cell(row.efficiency, ".2f"),
            f"{_cell(row.p50_us_at_50, '.1f')}/{_cell(row.p99_us_at_50, '.1f')}",
            f"{_cell(row.p50_us_at_90, '.1f')}/{_cell(row.p99_us_at_90, '.1f')}",
            _cell(row.session_capacity_flows, ",.0f"),
        )
    return table


def print_outcome(outcome: RunOutcome) -> None:
    if outcome.run_dir is None:
        for line in outcome.plan.lines():
            click.echo(line)
        return
    table = summary_table(outcome)
    console = Console(width=140)
    if table is not None:
        console.print(table)
    for line in outcome.summary:
        click.echo(line)
    if outcome.tier is not None:
        click.echo(f"tier: {outcome.tier}")
    click.echo(f"results: {outcome.run_dir}")
