"""The TRex generator: `TrexGenerator` (driver.py) drives a worker subprocess
(worker.py) over a JSON-lines channel (channel.py)."""

from __future__ import annotations

from traffic.trex.driver import TrexConfig, TrexGenerator, probe_api

__all__ = ["TrexConfig", "TrexGenerator", "probe_api"]
