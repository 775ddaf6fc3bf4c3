"""What the benches share: their command line's required paths, timing a call the same way, and writing a
bench's figures where the others are (bench/results/<name>.json). Imported as `bench.measure` with the
repository root on sys.path, or as `measure` by a script run from bench/ (its folder is on sys.path)."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

RESULTS = Path(__file__).resolve().parent / "results"
T = TypeVar("T")


def bench_parser(doc: str | None, *paths: str) -> argparse.ArgumentParser:
    """A bench's argument parser: the first line of its docstring `doc` as description, and a required
    path option --<name> for each of `paths` (the media, models and output a device run names)."""
    parser = argparse.ArgumentParser(description=doc.strip().splitlines()[0] if doc else None)
    for name in paths:
        parser.add_argument(f"--{name}", type=Path, required=True)
    return parser


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
