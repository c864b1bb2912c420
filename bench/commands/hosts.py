"""``cnfbench hosts``: testbed hosts over SSH."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bench.errors import InputError
from bench.hosts.compare import Status, comparison_table
from bench.hosts.errors import HardwareMismatch, TrexServerError, TrexStartFailed
from bench.hosts.fingerprint import Fingerprint, collect_fingerprint, local_fingerprint
from bench.hosts.probe import describe, probe_testbed, testbed_hosts
from bench.hosts.ssh import SshTarget, connect, parse_destination
from bench.hosts.trex import TrexServer, TrexServerConfig, trex_config_for
from bench.profiles import PROFILES_DIR, TestbedProfile, load_profile


def _console() -> Console:
    return Console(soft_wrap=False, width=160)


def resolve_testbed(text: str) -> Path:
    """A testbed profile path, or the name of one under profiles/testbeds/."""
    path = Path(text)
    if path.is_file():
        return path
    candidate = PROFILES_DIR / "testbeds" / f"{text}.yaml"
    if candidate.is_file():
        return candidate
    names = ", ".join(sorted(p.stem for p in (PROFILES_DIR / "testbeds").glob("*.yaml")))
    raise InputError(f"testbed {text!r}: no such file, and no bundled testbed (have: {names})")


def _fingerprint_table(name: str, fp: Fingerprint) -> Table:
    table = Table(title=f"fingerprint of {name}")
    table.add_column("fact")
    table.add_column("value", overflow="fold")
    for fact, value in describe(fp):
        table.add_row(escape(fact), escape(value))
    return table


@click.group("hosts")
def hosts_group() -> None:
    """Probe testbed hosts and manage the TRex server."""


@hosts_group.command("probe")
@click.argument("testbed")
@click.option("--json", "as_json", is_flag=True, help="Print the rows and fingerprints as JSON.")
@click.option(
    "--root",
    default="/",
    show_default=True,
    help="Read procfs/sysfs under this directory on each host (a chroot, a copied tree).",
)
def probe_command(testbed: str, as_json: bool, root: str) -> None:
    """Fingerprint the hosts of TESTBED and compare them with its expected hardware.

    TESTBED is a testbed profile file or the name of a bundled one.  Each expected
    property is a match, a deviation (warning) or a mismatch (error); the exit status is
    1 when any property is a mismatch or a host cannot be reached.
    """
    profile: TestbedProfile = load_profile(resolve_testbed(testbed), TestbedProfile).profile
    report = probe_testbed(profile, root=root)
    if as_json:
        body = {
            "testbed": report.testbed,
            "rows": [r.to_dict() for r in report.rows],
            "fingerprint": report.manifest_fingerprint(),
            "notes": report.notes,
        }
        click.echo(json.dumps(body, indent=2, sort_keys=True))
    else:
        console = _console()
        for name, (_, fp) in report.fingerprints.items():
            console.print(_fingerprint_table(name, fp))
        if report.rows:
            console.print(comparison_table(report.rows, f"testbed {report.testbed}"))
        for note in report.notes:
            console.print(note)
    if report.failed:
        bad = sum(r.status is Status.MISMATCH for r in report.rows)
        raise HardwareMismatch(
            f"testbed {report.testbed}: {bad} mismatch(es) with its expected hardware; "
            "results on these hosts would not be comparable with the standardized testbed"
        )


@hosts_group.command("fingerprint")
@click.argument("host")
@click.option("--key-file", help="Private key for the session.")
@click.option("--password-env", help="Environment variable holding the password.")
@click.option("--no-agent", is_flag=True, help="Do not offer keys from an SSH agent.")
@click.option("--jump", help="Jump host, [user@]address[:port].")
@click.option("--known-hosts", help="known_hosts file (default ~/.ssh/known_hosts).")
@click.option("--trust-new-host-key", is_flag=True, help="Accept and record an unknown key.")
@click.option("--timeout", "timeout_s", type=float, default=10.0, show_default=True)
@click.option("--root", default="/", show_default=True, help="Read procfs/sysfs under this.")
@click.option("--json", "as_json", is_flag=True, help="Print the full fingerprint as JSON.")
def fingerprint_command(
    host: str,
    *,
    key_file: str | None,
    password_env: str | None,
    no_agent: bool,
    jump: str | None,
    known_hosts: str | None,
    trust_new_host_key: bool,
    timeout_s: float,
    root: str,
    as_json: bool,
) -> None:
    """Fingerprint HOST ([user@]address[:port] over SSH, or `local` for this machine)."""
    if host == "local":
        fp = local_fingerprint(root)
    else:
        common: dict[str, Any] = {
            "key_file": key_file,
            "password_env": password_env,
            "use_agent": not no_agent,
            "known_hosts": known_hosts,
            "trust_new_host_key": trust_new_host_key,
            "timeout_s": timeout_s,
        }
        jump_target = SshTarget(**parse_destination(jump, "root"), **common) if jump else None
        target = SshTarget(**parse_destination(host, "root"), **common, jump=jump_target)
        with connect(target) as runner:
            fp = collect_fingerprint(runner, root=root)
    if as_json:
        click.echo(json.dumps(fp.to_dict(), indent=2, sort_keys=True))
    else:
        _console().print(_fingerprint_table(host, fp))


# --- the TRex server ------------------------------------------------------------------


@hosts_group.group("trex")
def trex_group() -> None:
    """Run the TRex server on a testbed's generator host (its generator.server section)."""


@contextmanager
def _trex_server(testbed: str) -> Iterator[tuple[TestbedProfile, TrexServer]]:
    """The TRex server of TESTBED's generator, over an open SSH session."""
    path = resolve_testbed(testbed)
    profile: TestbedProfile = load_profile(path, TestbedProfile).profile
    generator = next((h for h in testbed_hosts(profile) if h.role == "generator"), None)
    if generator is None or profile.generator.type != "trex":
        raise InputError(
            f"{path}: generator: a TRex generator with ssh settings (generator.ssh, or a "
            "host with role generator) is needed to run its server"
        )
    with connect(generator.target) as runner:
        yield profile, TrexServer(runner, TrexServerConfig.for_generator(profile.generator))


@trex_group.command("config")
@click.argument("testbed")
def trex_config_command(testbed: str) -> None:
    """Print the TRex config (trex_cfg.yaml) for TESTBED's generator."""
    profile: TestbedProfile = load_profile(resolve_testbed(testbed), TestbedProfile).profile
    click.echo(trex_config_for(profile.generator), nl=False)


@trex_group.command("start")
@click.argument("testbed")
@click.option("--keep-config", is_flag=True, help="Use the config file already on the host.")
def trex_start_command(testbed: str, keep_config: bool) -> None:
    """Write the config, start the server in the background and wait for its RPC port."""
    with _trex_server(testbed) as (profile, server):
        if not keep_config:
            server.write_config(trex_config_for(profile.generator))
        pid = server.start()
        try:
            version = server.wait_ready()
        except TrexStartFailed as exc:
            click.echo(exc.log, err=True, nl=False)
            raise
    config = server.config
    click.echo(f"TRex {version.version} ready on {config.rpc_host}:{config.rpc_port} (pid {pid})")


@trex_group.command("stop")
@click.argument("testbed")
def trex_stop_command(testbed: str) -> None:
    """Stop the server that `cnfbench hosts trex start` started."""
    with _trex_server(testbed) as (_, server):
        click.echo("stopped" if server.stop() else "not running")


@trex_group.command("status")
@click.argument("testbed")
def trex_status_command(testbed: str) -> None:
    """Say whether the server runs and its version; exit 1 when it does not run."""
    with _trex_server(testbed) as (_, server):
        pid = server.pid()
        if pid is None:
            raise TrexServerError(f"{server.where} is not running")
        click.echo(f"running (pid {pid}), version {server.version().version}")


@trex_group.command("log")
@click.argument("testbed")
def trex_log_command(testbed: str) -> None:
    """Print the end of the server's log."""
    with _trex_server(testbed) as (_, server):
        click.echo(server.fetch_log(), nl=False)
