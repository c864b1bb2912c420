"""Run directories for the analysis and annex tests, journaled through the real store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from analysis.synthetic import DEMO_VENDORS, SyntheticSpec, synthetic_run, write_run
from bench.store import RunStore


def write_spec(root: Path, spec: SyntheticSpec) -> Path:
    return write_run(synthetic_run(spec), root, RunStore.create)


def write_demo_runs(root: Path, **overrides: Any) -> list[Path]:
    """One run per demo vendor (vpp-router, stateful-firewall, cgnat)."""
    return [write_spec(root, SyntheticSpec(vendor=v, **overrides)) for v in DEMO_VENDORS]


def flip_byte(path: Path, offset: int | None = None) -> None:
    """Change one byte of `path` (the middle one by default)."""
    data = bytearray(path.read_bytes())
    where = len(data) // 2 if offset is None else offset
    data[where] ^= 0x01
    path.write_bytes(bytes(data))
