"""Long work says how far it is: a report per interval with items done, rate and time left, as a
structured event of the run (what `haic run` draws its bar from) with a one-line message."""

from __future__ import annotations

from haic_platform.progress import ProgressLog, ProgressReport


def test_progress_is_reported_at_most_every_interval_and_always_at_the_end(monkeypatch):
    clock = iter([0.0, 1.0, 2.0, 12.0, 13.0])
    monkeypatch.setattr("haic_platform.progress.time.monotonic", lambda: next(clock))
    reports = []
    progress = ProgressLog(reports.append, "clips", "src__a.csv", "scene detection", every_s=10.0)  # at t=0
    progress(1, 4)   # t=1: too soon
    progress(2, 4)   # t=2: too soon
    progress(3, 4)   # t=12: reported
    progress(4, 4)   # t=13: the end is always reported
    assert reports == [ProgressReport("clips", "src__a.csv", "scene detection", 3, 4, 0.25, 4.0),
                       ProgressReport("clips", "src__a.csv", "scene detection", 4, 4, 0.3077, None)]
    assert [r.line() for r in reports] == ["clips [src__a.csv] scene detection: 3/4 (75 %), 0.25/s, about 4 s left",
                                           "clips [src__a.csv] scene detection: 4/4 (100 %), 0.31/s"]
