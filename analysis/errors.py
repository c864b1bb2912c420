"""Errors of the analysis package; the CLI catches `AnalysisError`."""

from __future__ import annotations


class AnalysisError(Exception):
    exit_code = 1


class ResultsError(AnalysisError):
    """A results directory is missing, unreadable or of an unknown format.  Exit code 2."""

    exit_code = 2
