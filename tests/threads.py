"""Calling the code under test from several threads at once (two cuts, four fetches of one URI), to
show that concurrent callers do not trip over each other's files."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


def call_at_once(fn: Callable[[], Any], times: int, wait_s: float) -> tuple[list[Any], list[Exception]]:
    """Call `fn` from `times` threads started together, waiting up to `wait_s` for each; return what the
    calls returned and the exceptions they raised, each in the order the calls finished."""
    results: list[Any] = []
    errors: list[Exception] = []

    def call() -> None:
        try:
            results.append(fn())
        except Exception as exc:  # pragma: no cover - the caller's assertion shows it
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(times)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(wait_s)
    return results, errors
