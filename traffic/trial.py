"""The trial procedure as a search sees it: a retrying measure function.

`TrialRunner(generator, streams)` is a `traffic.model.MeasureFn`: called with a duration
and an intended load it returns a valid `TrialResult`, or raises `SearchError` after
`max_attempts` invalid ones.  Every trial, valid or not, goes to the `record` callback
first (the store journals it), so an invalid trial is kept with its reason but never
reaches a search as a bound.  After an invalid trial the runner reconnects the
generator (close, then open, a bounded number of times with a growing pause) and repeats
the same trial.

Before the first trial, with `learning_frames`, the runner sends a short low-rate
learning trial (RFC 2544 §23: let the devices on the path learn the addresses before
counting), recorded as kind ``learning`` and not returned to the search.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from traffic.errors import GeneratorError, GeneratorUnavailable, SearchError
from traffic.model import Generator, StreamSpec, TrialKind, TrialResult, TrialSpec

log = logging.getLogger(__name__)

TrialCallback = Callable[[TrialResult], None]
LEARNING_DURATION_S = 1.0
LEARNING_RATE_PPS = 1000.0  # per direction


class TrialRunner:
    """A `MeasureFn` over a `Generator` with recording, retries and reconnects."""

    def __init__(
        self,
        generator: Generator,
        streams: StreamSpec,
        *,
        record: TrialCallback | None = None,
        kind: TrialKind = TrialKind.SEARCH,
        max_attempts: int = 3,
        reconnect_attempts: int = 3,
        reconnect_pause_s: float = 0.5,
        learning_frames: bool = False,
    ) -> None:
        if max_attempts < 1 or reconnect_attempts < 1:
            raise ValueError("max_attempts and reconnect_attempts must be at least 1")
        self.generator = generator
        self.streams = streams
        self.record = record
        self.kind = kind
        self.max_attempts = max_attempts
        self.reconnect_attempts = reconnect_attempts
        self.reconnect_pause_s = reconnect_pause_s
        self._learn = learning_frames
        self.invalid_trials = 0

    def __call__(self, duration_s: float, load_pps: float) -> TrialResult:
        return self.run(TrialSpec(self.streams, load_pps, duration_s, self.kind))

    def run(self, spec: TrialSpec) -> TrialResult:
        """Run `spec` until one attempt is valid; raise `SearchError` when none is."""
        if self._learn:
            self._learn = False
            self._learning()
        reason = ""
        for attempt in range(1, self.max_attempts + 1):
            result = self._attempt(spec)
            if result.valid:
                return result
            self.invalid_trials += 1
            reason = result.invalid_reason or "invalid"
            log.warning(
                "trial at %.0f pps for %.0f s invalid (attempt %d of %d): %s",
                spec.intended_load_pps,
                spec.intended_duration_s,
                attempt,
                self.max_attempts,
                reason,
            )
            if attempt < self.max_attempts:
                self._reconnect()
        raise SearchError(
            f"{self.max_attempts} attempts of the trial at {spec.intended_load_pps:.0f} pps "
            f"were invalid; last: {reason}"
        )

    def _attempt(self, spec: TrialSpec) -> TrialResult:
        started = time.time()
        try:
            result = self.generator.run_trial(spec)
        except GeneratorError as exc:
            result = TrialResult.invalid(spec, f"{type(exc).__name__}: {exc}", started)
        if self.record is not None:
            self.record(result)
        return result

    def _learning(self) -> None:
        lanes = len(self.streams.direction.lanes)
        spec = TrialSpec(
            self.streams, LEARNING_RATE_PPS * lanes, LEARNING_DURATION_S, TrialKind.LEARNING
        )
        result = self._attempt(spec)
        if not result.valid:
            log.warning("learning frames failed: %s", result.invalid_reason)
            self._reconnect()

    def _reconnect(self) -> None:
        last: GeneratorError | None = None
        for attempt in range(1, self.reconnect_attempts + 1):
            try:
                self.generator.close()
            except GeneratorError as exc:
                log.debug("close before reconnect: %s", exc)
            try:
                self.generator.open()
                log.info("generator reconnected (attempt %d)", attempt)
                return
            except GeneratorError as exc:
                last = exc
                log.warning("reconnect attempt %d failed: %s", attempt, exc)
                time.sleep(self.reconnect_pause_s * attempt)
        raise GeneratorUnavailable(
            f"the generator did not come back after {self.reconnect_attempts} reconnects: {last}"
        )
