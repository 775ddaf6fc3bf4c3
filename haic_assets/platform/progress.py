"""Progress of long per-item work in the run log: items done, rate and time left, at most every
`every_s` seconds (and at the end), so a stage that works for an hour says how far it is."""

from __future__ import annotations

import time


class ProgressLog:
    def __init__(self, log, what: str, every_s: float = 10.0):
        self._log = log
        self._what = what
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
        left = f", about {(total - done) / rate:.0f} s left" if rate > 0 and done < total else ""
        self._log.info(f"{self._what}: {done}/{total} ({100 * done / total:.0f} %), {rate:.2f}/s{left}")
