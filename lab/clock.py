"""Virtual time shared by every server of one lab.

Lab time runs `time_scale` times faster than wall time, so a 60 s trial at a time scale
of 200 takes 0.3 s of wall time.  Every counter, rate and timestamp the lab reports is in
virtual seconds since the lab started; only sleeping converts back to wall time.
"""

from __future__ import annotations

import threading
import time


class VirtualClock:
    """``virtual_s = (monotonic - t0) * time_scale``.

    Thread-safe: it holds no mutable state after construction.
    """

    def __init__(self, time_scale: float, t0: float | None = None) -> None:
        if not time_scale > 0:
            raise ValueError(f"time_scale must be positive, got {time_scale}")
        self.time_scale = float(time_scale)
        self.t0 = time.monotonic() if t0 is None else t0

    def now_s(self) -> float:
        """Virtual seconds since the lab started."""
        return (time.monotonic() - self.t0) * self.time_scale

    def wall_for(self, virtual_s: float) -> float:
        """The `time.monotonic()` reading at which lab time reaches `virtual_s`."""
        return self.t0 + virtual_s / self.time_scale

    def wall_duration(self, virtual_s: float) -> float:
        """How many wall seconds a span of `virtual_s` lab seconds takes."""
        return virtual_s / self.time_scale

    def sleep_until(self, virtual_s: float, stop: threading.Event | None = None) -> bool:
        """Sleep until lab time reaches `virtual_s`; False when `stop` was set first."""
        delay = self.wall_for(virtual_s) - time.monotonic()
        if delay <= 0:
            return True
        if stop is None:
            time.sleep(delay)
            return True
        return not stop.wait(delay)

    def sleep(self, virtual_s: float) -> None:
        """Sleep for `virtual_s` seconds of lab time."""
        if virtual_s > 0:
            time.sleep(virtual_s / self.time_scale)
