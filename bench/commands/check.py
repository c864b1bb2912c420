"""``cnfbench check``: functional conformance checks."""

from __future__ import annotations

import ipaddress
import json
import os
import textwrap
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from bench.checks import (
    all_checks,
    checks_document,
    essential_failures,
    get_check,
    load_target,
    run_static_checks,
)
from bench.checks.context import DEFAULT_K8S_VERSION
from bench.checks.junit import write_junit
from bench.checks.registry import Check, CheckResult, Status
from bench.errors import InputError, RunFailed
from bench.schemas import validate

STATUS_STYLE = {
    Status.PASSED: "green",
    Status.FAILED: "red",
    Status.SKIPPED: "yellow",
    Status.ERROR: "magenta",
}


@click.command("check")
@click.argument("target", required=False, type=click.Path(path_type=Path))
@click.option("--list", "list_checks", is_flag=True, help="List every check and stop.")
@click.option("--explain", metavar="ID", help="Describe one check and stop.")
@click.option(
    "--k8s-version",
    default=DEFAULT_K8S_VERSION,
    show_default=True,
    help="Kubernetes version the manifests must suit.",
)
@click.option("--namespace", help="Namespace to render a bare chart or manifests into.")
@click.option("--dual-stack", is_flag=True, help="Require dual-stack Services.")
@click.option("--allow-ip", multiple=True, metavar="CIDR", help="Addresses not to flag.")
@click.option("--only", metavar="ID,...", help="Run only these checks.")
@click.option("--junit", "junit_file", type=click.Path(path_type=Path), help="Write JUnit XML.")
@click.option("--json", "json_file", type=click.Path(path_type=Path), help="Write checks.json.")
def check_command(
    *,
    target: Path | None,
    list_checks: bool,
    explain: str | None,
    k8s_version: str,
    namespace: str | None,
    dual_stack: bool,
    allow_ip: tuple[str, ...],
    only: str | None,
    junit_file: Path | None,
    json_file: Path | None,
) -> None:
    """Run the static conformance checks on TARGET.

    TARGET is a CNF profile, a Helm chart directory, a manifest file or directory, or a
    CNCF suite cnf-testsuite.yml.  Checks that need a cluster or a generator run as
    part of `cnfbench run`.  Exits 1 when an essential check fails.
    """
    console = Console(soft_wrap=False, width=140)
    if list_checks:
        console.print(_list_table(all_checks()))
        return
    if explain:
        click.echo(_explain(get_check(explain)))
        return
    if target is None:
        raise InputError("give a TARGET to check, or --list / --explain ID")
    _check_ips(allow_ip)

    artifacts = load_target(target, namespace=namespace, k8s_version=k8s_version)
    selected = [s.strip() for s in only.split(",") if s.strip()] if only else None
    results = run_static_checks(
        artifacts,
        k8s_version=k8s_version,
        require_dual_stack=dual_stack,
        allowed_ips=allow_ip,
        only=selected,
    )
    document = checks_document(results, target=str(target), k8s_version=k8s_version)
    validate("checks", document, "checks.json")
    if json_file is not None:
        data = json.dumps(document, indent=2, sort_keys=True).encode() + b"\n"
        _write(json_file, data)
    if junit_file is not None:
        write_junit(results, junit_file, name=f"cnfbench.{artifacts.name}")

    console.print(_results_table(results, f"{artifacts.name}: {target}"))
    counts = document["summary"]["by_status"]
    console.print(", ".join(f"{v} {k}" for k, v in counts.items()))
    failures = essential_failures(results)
    if failures:
        raise RunFailed(
            f"{len(failures)} essential check(s) did not pass: "
            + ", ".join(r.id for r in failures)
        )


def _check_ips(values: tuple[str, ...]) -> None:
    for value in values:
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError as exc:
            raise click.UsageError(f"--allow-ip: {value!r} is not an address or CIDR") from exc


def _write(path: Path, data: bytes) -> None:
    """Write through a temp file and a rename, so a failure leaves nothing half-written."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise InputError(f"{path}: cannot write: {exc.strerror}") from exc


def _list_table(checks: list[Check]) -> Table:
    table = Table(title="cnfbench checks", show_lines=False)
    for column in ("id", "category", "weight", "needs", "title"):
        table.add_column(column, no_wrap=column != "title")
    for c in sorted(checks, key=lambda c: (c.category.value, c.id)):
        needs = ",".join(sorted(n.value for n in c.needs))
        table.add_row(c.id, c.category.value, c.weight.value, needs, c.title)
    return table


def _explain(c: Check) -> str:
    def para(label: str, text: str) -> str:
        body = textwrap.fill(text, width=88, initial_indent="  ", subsequent_indent="  ")
        return f"{label}:\n{body}"

    needs = ", ".join(sorted(n.value for n in c.needs))
    head = f"{c.id}: {c.title}\ncategory: {c.category.value}  weight: {c.weight.value}"
    parts = [
        head + f"  needs: {needs}",
        para("Overview", c.overview),
        para("Rationale", c.rationale),
        para("Remediation", c.remediation),
    ]
    return "\n\n".join(parts)


def _results_table(results: list[CheckResult], title: str) -> Table:
    table = Table(title=title)
    table.add_column("status", no_wrap=True)
    table.add_column("check", no_wrap=True)
    table.add_column("weight", no_wrap=True)
    table.add_column("message")
    table.add_column("impacted")
    for r in results:
        style = STATUS_STYLE[r.status]
        shown = [str(i) for i in r.impacted[:3]]
        if len(r.impacted) > 3:
            shown.append(f"... {len(r.impacted) - 3} more")
        table.add_row(
            f"[{style}]{r.status.value}[/{style}]",
            r.id,
            r.check.weight.value,
            r.message,
            "\n".join(shown),
        )
    return table
