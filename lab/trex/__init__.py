"""The TRex-compatible server of the lab: wire format, streams, engine and server."""

from __future__ import annotations

from lab.trex.server import RELEASES, Faults, TRexServer

__all__ = ["RELEASES", "Faults", "TRexServer"]
