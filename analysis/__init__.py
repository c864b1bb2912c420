"""Pure functions over stored results: loading, scaling fits, latency, tiers, the annex."""

from analysis.loader import RunSet, load_runs

__all__ = ["RunSet", "load_runs"]
