"""The cnfbench controller: CLI, profiles, run orchestration, results store."""

__version__ = "0.1.0"
