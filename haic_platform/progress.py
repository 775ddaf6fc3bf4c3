"""Progress of long per-item work: items done, rate and time left, at most every `every_s` seconds
(and at the end), so a stage that works for an hour says how far it is.

Each report is a structured event of the run (an engine event whose metadata `haic/progress`
holds stage, partition, what, done, total, rate and seconds left), shown in the UI's run log with
its one-line message; `haic run` draws its bar from those fields (haic_cli/progress.py), never by
reading the message back.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Callable

PROGRESS_KEY = "haic/progress"


@dataclass(frozen=True)
class ProgressReport:
    stage: str
    partition: str
    what: str
    done: int
    total: int
    rate_per_s: float
    seconds_left: float | None

    def line(self) -> str:
        left = f", about {self.seconds_left:.0f} s left" if self.seconds_left is not None else ""
        percent = 100 * self.done / self.total if self.total else 100.0
        return (f"{self.stage} [{self.partition}] {self.what}: {self.done}/{self.total} ({percent:.0f} %), "
                f"{self.rate_per_s:.2f}/s{left}")

    def as_metadata(self) -> dict:
        return asdict(self)


class ProgressLog:
    """`progress(done, total)`: hands a ProgressReport to `report` when there is news to say."""

    def __init__(self, report: Callable[[ProgressReport], None], stage: str, partition: str, what: str,
                 every_s: float = 10.0):
        self._report = report
        self._names = (stage, partition, what)
        self._every_s = every_s
        self._started = time.monotonic()
        self._last = self._started
        self._done = 0

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if done == self._done or (now - self._last < self._every_s and done < total):
            return
        self._done, self._last = done, now
        elapsed = now - self._started
        rate = done / elapsed if elapsed > 0 else 0.0
        left = (total - done) / rate if rate > 0 and done < total else None
        self._report(ProgressReport(*self._names, done=done, total=total, rate_per_s=round(rate, 4),
                                    seconds_left=None if left is None else round(left, 1)))


def engine_event_reporter(context) -> Callable[[ProgressReport], None]:
    """Reports progress as an engine event of the step (its message for people, its metadata for
    programs); outside a run (a direct call in a test), as a log line."""
    from dagster import MetadataValue
    from dagster._core.events import DagsterEvent, EngineEventData

    try:
        step_context = context.get_step_execution_context()
    except Exception:  # noqa: BLE001 - contexts built outside a run have no step
        return lambda report: context.log.info(report.line())

    def report(progress: ProgressReport) -> None:
        DagsterEvent.engine_event(step_context, progress.line(), EngineEventData(
            metadata={PROGRESS_KEY: MetadataValue.json(progress.as_metadata())}))

    return report
