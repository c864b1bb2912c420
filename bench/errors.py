"""Errors of the controller.

`BenchError` is the root of the user-facing errors; the CLI catches it (and the roots
of `traffic` and `analysis`), prints the message on one line and exits with the error's
`exit_code`.  Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_TIER_NOT_REACHED = 3


class BenchError(Exception):
    exit_code = EXIT_FAILED


class InputError(BenchError):
    """Bad input: a profile, a chart, a results directory.  Exit code 2."""

    exit_code = EXIT_USAGE


class ProfileError(InputError):
    """One or more problems in a profile, each as ``file:line: field.path: message``."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(problems[0] if len(problems) == 1 else "\n".join(problems))


class NotBuiltYet(BenchError):
    exit_code = EXIT_USAGE


class StoreError(BenchError):
    """The results store could not be written or read."""


class RunFailed(BenchError):
    """A run stage failed; the run directory says which and why."""


class Interrupted(BenchError):
    """The run was stopped by a signal; it is resumable."""

    exit_code = 130


class TierNotReached(BenchError):
    exit_code = EXIT_TIER_NOT_REACHED
