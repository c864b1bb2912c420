"""Shared fixtures."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PROFILES = REPO / "profiles"


@pytest.fixture
def cnfbench() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run the real console entry point in a subprocess."""

    def run(
        *args: str, cwd: Path | None = None, timeout: float = 120.0
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "bench.cli", *args],
            capture_output=True,
            text=True,
            cwd=cwd or REPO,
            timeout=timeout,
            check=False,
        )

    return run
