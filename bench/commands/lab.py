"""``cnfbench lab``: start, inspect and stop the embedded lab."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from bench import labctl

_STATE_DIR = click.option(
    "--state-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Where the lab keeps state.json and its log "
    "(default: $XDG_STATE_HOME/cnfbench/lab or ~/.local/state/cnfbench/lab).",
)


@click.group("lab")
def lab_group() -> None:
    """Start, inspect and stop the embedded lab (an emulated testbed on loopback)."""


@lab_group.command("up")
@_STATE_DIR
@click.option("--detach", is_flag=True, help="Return once the lab is ready; it keeps running.")
@click.option("--seed", type=int, default=1, show_default=True, help="Seed of the model.")
@click.option(
    "--time-scale",
    type=click.FloatRange(min=0, min_open=True),
    default=200.0,
    show_default=True,
    help="Lab seconds per wall second.",
)
@click.option("--vendor", default="vpp-router", show_default=True, help="Vendor model.")
@click.option("--replicas", type=click.IntRange(min=0), default=1, show_default=True)
@click.option("--trex-api", type=click.Choice(["auto", "v2.87", "v3.04"]), default="auto")
@click.option("--trex-sync-port", type=click.IntRange(0, 65535), default=0)
@click.option("--trex-async-port", type=click.IntRange(0, 65535), default=0)
@click.option("--no-noise", is_flag=True, help="No trial noise and no loss bursts.")
def up_command(
    *,
    state_dir: Path | None,
    detach: bool,
    seed: int,
    time_scale: float,
    vendor: str,
    replicas: int,
    trex_api: str,
    trex_sync_port: int,
    trex_async_port: int,
    no_noise: bool,
) -> None:
    """Start the embedded lab on loopback and print its endpoints as JSON.

    Without --detach the command stays in the foreground until Ctrl-C, then stops
    the lab.
    """
    handle = labctl.start_lab(
        state_dir,
        seed=seed,
        time_scale=time_scale,
        vendor=vendor,
        replicas=replicas,
        noise=not no_noise,
        trex_api=trex_api,
        trex_sync_port=trex_sync_port,
        trex_async_port=trex_async_port,
    )
    click.echo(json.dumps(handle.endpoints.raw, indent=2, sort_keys=True))
    if detach:
        return
    try:
        while handle.alive():
            time.sleep(0.5)
    except KeyboardInterrupt:
        click.echo("stopping the lab", err=True)
    else:
        raise labctl.LabError(
            f"the lab (pid {handle.endpoints.pid}) exited by itself; see "
            f"{handle.state_dir / labctl.LOG_FILE}"
        )
    finally:
        handle.stop()


@lab_group.command("status")
@_STATE_DIR
@click.option("--json", "as_json", is_flag=True, help="Print the endpoints as JSON.")
def status_command(*, state_dir: Path | None, as_json: bool) -> None:
    """Show whether a lab runs and where its servers listen (exit 1 when none runs)."""
    endpoints = labctl.read_lab(state_dir)
    if as_json:
        click.echo(json.dumps(endpoints.raw, indent=2, sort_keys=True))
        return
    click.echo(f"lab running (pid {endpoints.pid}) in {endpoints.state_dir}")
    click.echo(f"  seed {endpoints.seed}, time scale {endpoints.time_scale:g}")
    for name, service in sorted(endpoints.services.items()):
        click.echo(f"  {name}: {json.dumps(service, sort_keys=True)}")


@lab_group.command("down")
@_STATE_DIR
def down_command(*, state_dir: Path | None) -> None:
    """Stop the lab and leave nothing running."""
    if labctl.stop_lab(state_dir):
        click.echo("lab stopped")
    else:
        click.echo("no lab was running")
