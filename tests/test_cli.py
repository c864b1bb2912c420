"""The CLI's surface: help, version, verbosity and exit codes."""

from __future__ import annotations

from collections.abc import Callable
from subprocess import CompletedProcess

from bench import __version__

Run = Callable[..., CompletedProcess[str]]


def test_help_lists_every_subcommand(cnfbench: Run) -> None:
    result = cnfbench("--help")
    assert result.returncode == 0
    for name in ("run", "check", "sweep", "annex", "compare", "hosts", "lab", "profiles"):
        assert f"  {name} " in result.stdout
    assert cnfbench("profiles", "--help").returncode == 0


def test_version(cnfbench: Run) -> None:
    result = cnfbench("--version")
    assert result.returncode == 0 and __version__ in result.stdout


def test_usage_errors_exit_2(cnfbench: Run) -> None:
    result = cnfbench("no-such-command")
    assert result.returncode == 2
    assert "No such command" in result.stderr
    result = cnfbench("profiles", "validate", "/nonexistent.yaml")
    assert result.returncode == 2
    assert result.stderr.startswith("/nonexistent.yaml:0: (file): cannot read")
