"""Long work says how far it is: a log line per interval with items done, rate and time left."""

from __future__ import annotations

from haic_assets.platform.progress import ProgressLog


class Lines:
    def __init__(self):
        self.lines = []

    def info(self, text):
        self.lines.append(text)


def test_progress_is_logged_at_most_every_interval_and_always_at_the_end(monkeypatch):
    clock = iter([0.0, 1.0, 2.0, 12.0, 13.0])
    monkeypatch.setattr("haic_assets.platform.progress.time.monotonic", lambda: next(clock))
    log = Lines()
    progress = ProgressLog(log, "clips [src__a.csv] scene detection", every_s=10.0)  # started at t=0
    progress(1, 4)   # t=1: too soon
    progress(2, 4)   # t=2: too soon
    progress(3, 4)   # t=12: logged
    progress(4, 4)   # t=13: the end is always logged
    assert log.lines == ["clips [src__a.csv] scene detection: 3/4 (75 %), 0.25/s, about 4 s left",
                         "clips [src__a.csv] scene detection: 4/4 (100 %), 0.31/s"]
