"""Functional conformance checks: registry, artifacts, static, runtime and disruption.

Importing this package registers every check.  The entry points other parts call:

- `all_checks()`, `get_check(id)`: the registry;
- `run_static_checks(artifacts, ...)`: the checks that need only the artifacts;
- `run_runtime_checks(ctx)`: the checks that need a cluster;
- `measure_disruption(ctx)`: lifecycle events under traffic.
"""

from __future__ import annotations

from bench.checks import disruption, runtime, static
from bench.checks.registry import Check, lookup, registered

__all__ = ["all_checks", "disruption", "get_check", "runtime", "static"]


def all_checks() -> list[Check]:
    return registered()


def get_check(check_id: str) -> Check:
    return lookup(check_id)
