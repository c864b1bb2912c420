"""Errors of the traffic plane.

`TrafficError` is the root; the CLI catches it and prints its message on one line.
"""

from __future__ import annotations


class TrafficError(Exception):
    """A user-facing traffic-plane error: the message says what was wrong and what to do."""

    exit_code = 1


class UnitError(TrafficError, ValueError):
    """A quantity with a missing or unknown unit, or out of range."""

    exit_code = 2


class GeneratorError(TrafficError):
    """The traffic generator failed: lost connection, RPC error, port down, worker death."""


class GeneratorUnavailable(GeneratorError):
    """The generator could not be reached or no client library fits its API version."""


class SearchError(TrafficError):
    """A throughput search could not finish (too many invalid trials, bad goals)."""


class StreamError(TrafficError):
    """Streams cannot be built from the traffic and testbed profiles as given."""

    exit_code = 2
