"""The suite's wall-clock limits, all scaled by one factor.

Tests wait on events (a file appearing, a run's status, a port answering); a limit only says how
long to wait before calling the event lost. A few tests also hand the code under test a deadline
(a per-item time-out, an HTTP client's time-out) that a real item must meet. On a loaded machine
everything takes longer: HAIC_TEST_TIME_SCALE=N (default 1; scripts/test_under_load.sh sets it)
makes every limit of the suite N times longer: pytest-timeout's (conftest.py), `wait_until`'s,
every subprocess time-out and every deadline the tests hand out. Read here and nowhere else.
"""

from __future__ import annotations

import os

SCALE_VARIABLE = "HAIC_TEST_TIME_SCALE"


def _scale() -> float:
    text = os.environ.get(SCALE_VARIABLE, "").strip() or "1"
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{SCALE_VARIABLE}={text!r}: give a number >= 1") from None
    if not value >= 1:
        raise ValueError(f"{SCALE_VARIABLE}={text!r}: give a number >= 1")
    return value


TIME_SCALE = _scale()


def limit(seconds: float) -> float:
    """`seconds`, a wall-clock limit of the suite, scaled for this machine."""
    return seconds * TIME_SCALE
