"""Progress of a run: a rich display on a terminal, plain log lines elsewhere."""

from __future__ import annotations

import logging
import sys
import time
from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

from bench.sweep import SweepEvent

log = logging.getLogger(__name__)


class RunProgress:
    """Receives sweep events; shows stage, point, trial count, ETA and the last result."""

    def __init__(self, expected_trials: int, force_plain: bool = False) -> None:
        self.expected = max(1, expected_trials)
        self.trials = 0
        self.stage = ""
        self.point = ""
        self._started = time.monotonic()
        console = Console(stderr=True)
        self._rich = console.is_terminal and not force_plain
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        if self._rich:
            self._progress = Progress(
                TextColumn("[bold]{task.fields[stage]}[/] {task.fields[point]}"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total} trials"),
                TimeRemainingColumn(),
                TextColumn("{task.fields[last]}"),
                console=console,
                transient=False,
            )

    def __enter__(self) -> RunProgress:
        if self._progress is not None:
            self._progress.start()
            self._task = self._progress.add_task(
                "run", total=self.expected, stage="", point="", last=""
            )
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.stop()

    def stage_started(self, stage: str) -> None:
        self.stage = stage
        self._update(last="")
        if not self._rich:
            log.info("stage %s", stage)

    def __call__(self, event: SweepEvent) -> None:
        if event.point is not None:
            self.point = event.point.key
        if event.trial is None:
            self.stage = event.stage
            self._update(last=event.message)
            return
        self.trials += 1
        trial = event.trial
        if trial.valid:
            last = (
                f"{trial.spec.intended_load_pps / 1e6:.3f} Mpps for "
                f"{trial.spec.intended_duration_s:g} s: loss {trial.loss_ratio:.2e}"
            )
        else:
            last = f"invalid: {trial.invalid_reason}"
        if self.trials > self.expected:
            self.expected = self.trials + max(1, self.expected // 10)
        self._update(last=last)
        if not self._rich and (self.trials % 10 == 0 or not trial.valid):
            log.info(
                "%s %s trial %d/%d (est.): %s",
                self.stage,
                self.point,
                self.trials,
                self.expected,
                last,
            )

    def _update(self, last: str) -> None:
        if self._progress is None or self._task is None:
            return
        self._progress.update(
            self._task,
            completed=self.trials,
            total=self.expected,
            stage=self.stage,
            point=self.point,
            last=last,
        )


def stdout_is_terminal() -> bool:
    return sys.stdout.isatty()
