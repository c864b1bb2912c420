"""``cnfbench hosts``: testbed hosts over SSH."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bench.errors import InputError
from bench.hosts.compare import Status, comparison_table
from bench.hosts.errors import HardwareMismatch
from bench.hosts.fingerprint import Fingerprint, collect_fingerprint, local_fingerprint
from bench.hosts.probe import describe, probe_testbed
from bench.hosts.ssh import SshTarget, connect, parse_destination
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
