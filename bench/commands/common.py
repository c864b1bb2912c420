"""Helpers shared by subcommands."""

from __future__ import annotations

from bench.errors import NotBuiltYet


def not_built(what: str) -> NotBuiltYet:
    return NotBuiltYet(f"{what} is not supported yet in this version of cnfbench")
