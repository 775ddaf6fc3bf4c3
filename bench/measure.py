"""What the benches share: timing a call the same way, and writing a bench's figures where the others
are (bench/results/<name>.json). Imported as `bench.measure` with the repository root on sys.path."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

RESULTS = Path(__file__).resolve().parent / "results"
T = TypeVar("T")


def best_of(repeats: int, fn: Callable[[], T]) -> tuple[float, T]:
    """The fastest of `repeats` calls of `fn`, in seconds, and the last call's value (the least
    disturbed run is the best estimate of the work itself on a shared machine)."""
    best, value = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - t0)
    return best, value


def write_result(name: str, figures: Any) -> Path:
    """Write `figures` as bench/results/`name`.json (indented, newline-terminated); return the path."""
    out = RESULTS / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2) + "\n")
    return out
