"""The ``cnfbench`` command line.

Verbosity, logging and the mapping of errors to exit codes live here and nowhere else;
each subcommand's options are in `bench.commands`, and orchestration code never sees
click.
"""

from __future__ import annotations

import importlib
import logging
import sys
from typing import cast

import click

from analysis.errors import AnalysisError
from bench import __version__
from bench.errors import EXIT_USAGE, BenchError, ProfileError
from traffic.errors import TrafficError

USER_ERRORS = (BenchError, TrafficError, AnalysisError)


def configure_logging(verbose: int, quiet: int) -> None:
    level = logging.INFO - 10 * verbose + 10 * quiet
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(max(logging.DEBUG, min(level, logging.CRITICAL)))


# Each subcommand is imported when it is used, so that `cnfbench --help` or `cnfbench
# lab status` does not pay for pandas, matplotlib and the Kubernetes client.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "run": (
        "bench.commands.run",
        "run_command",
        "Run a full benchmark: sweep, checks, tier, annex.",
    ),
    "sweep": (
        "bench.commands.run",
        "sweep_command",
        "Run the performance sweep only (no checks).",
    ),
    "check": ("bench.commands.check", "check_command", "Run conformance checks on a CNF."),
    "annex": ("bench.commands.annex", "annex_group", "Render or verify the annex of a run."),
    "compare": ("bench.commands.compare", "compare_command", "Compare NDR/PDR across runs."),
    "hosts": ("bench.commands.hosts", "hosts_group", "Probe testbed hosts over SSH; TRex server."),
    "lab": ("bench.commands.lab", "lab_group", "Start, inspect and stop the embedded lab."),
    "profiles": ("bench.commands.profiles", "profiles_group", "Validate profiles."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, attr, _ = COMMANDS[cmd_name]
        return cast(click.Command, getattr(importlib.import_module(module), attr))

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, short) for name, (_, _, short) in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 99},
)
@click.version_option(__version__, "--version", prog_name="cnfbench")
@click.option("-v", "--verbose", count=True, help="More log detail on stderr (repeatable).")
@click.option("-q", "--quiet", count=True, help="Less log detail on stderr (repeatable).")
def cli(verbose: int, quiet: int) -> None:
    """Performance benchmarking and certification of cloud-native network functions.

    cnfbench drives TRex or NFVBench traffic generators against CNF pods at increasing
    replica counts, searches NDR and PDR (RFC 2544, ETSI NFV-TST 009, RFC 9971
    MLRsearch), measures latency and session capacity, runs conformance checks and
    assigns a tier.  Without hardware, `cnfbench run` rehearses everything against an
    embedded lab on loopback.
    """
    configure_logging(verbose, quiet)


def main(argv: list[str] | None = None) -> int:
    try:
        cli.main(args=argv, prog_name="cnfbench", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.Abort:
        click.echo("cnfbench: aborted", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return EXIT_USAGE if exc.exit_code == 2 else exc.exit_code
    except ProfileError as exc:
        for problem in exc.problems:
            click.echo(problem, err=True)
        return exc.exit_code
    except USER_ERRORS as exc:
        for line in str(exc).splitlines() or [type(exc).__name__]:
            click.echo(f"cnfbench: error: {line}", err=True)
        return int(getattr(exc, "exit_code", 1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
