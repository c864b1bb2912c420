"""What every search strategy checks of its arguments before the first trial."""

from __future__ import annotations

from collections.abc import Sequence

from traffic.errors import SearchError
from traffic.model import Goal


def check_search_args(goals: Sequence[Goal], min_load_pps: float, max_load_pps: float) -> None:
    if not goals:
        raise SearchError("a search needs at least one goal")
    if not 0 < min_load_pps < max_load_pps:
        raise SearchError(f"need 0 < min load < max load, got {min_load_pps}, {max_load_pps}")
