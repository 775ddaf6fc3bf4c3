"""A run's progress at the terminal for `haic run` / `haic demo`: stage by stage and, inside a
stage, its items (the stages' progress log lines), read from the run's own events.

At a terminal one line is redrawn (a bar of stages done, the running stage, its items) and each
stage's summary is printed above it; elsewhere (a log file, CI) plain lines: one per stage
started and finished, and the stages' progress lines as they come.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, TextIO

from dagster import DagsterEventType

# "<stage> [<partition>] <what>: 3/4 (75 %), 0.25/s, about 4 s left" (platform/progress.py)
_ITEMS = re.compile(r"^(?P<stage>\w+) \[[^\]]*\] (?P<what>[^:]+): (?P<done>\d+)/(?P<total>\d+) ")
# "<stage> [<partition>]: 2 kept, ..." (the stage factory's summary of a partition's decisions)
_SUMMARY = re.compile(r"^\w+ \[[^\]]*\]: \d+ kept")
_STEP_EVENTS = {DagsterEventType.STEP_START, DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE,
                DagsterEventType.STEP_SKIPPED}
BAR_WIDTH = 20
# Dagster's error for each step after a failed one: the failed step's line already says why.
_SKIPPED_STEP = re.compile(r"^Dependencies for step \S+ failed: .* Not executing\.$")


@dataclass
class RunProgress:
    """What is known of a run so far, from its events; `lines` are what to print above the bar."""

    total_steps: int
    finished: list[str] = field(default_factory=list)
    running: str | None = None
    items: str = ""
    lines: list[str] = field(default_factory=list)
    started_at: dict[str, float] = field(default_factory=dict)

    def see(self, entry, plain: bool) -> None:
        event = entry.dagster_event
        step = entry.step_key or ""
        if event is not None and event.event_type in _STEP_EVENTS:
            n = len(self.finished) + (1 if event.event_type == DagsterEventType.STEP_START else 0)
            if event.event_type == DagsterEventType.STEP_START:
                self.running, self.items = step, ""
                self.started_at[step] = entry.timestamp
                if plain:
                    self.lines.append(f"[{n}/{self.total_steps}] {step} started")
            else:
                self.finished.append(step)
                if self.running == step:
                    self.running, self.items = None, ""
                took = entry.timestamp - self.started_at.get(step, entry.timestamp)
                verb = {DagsterEventType.STEP_SUCCESS: "done", DagsterEventType.STEP_FAILURE: "FAILED",
                        DagsterEventType.STEP_SKIPPED: "skipped"}[event.event_type]
                reason = step_failure_reason(event) if event.event_type == DagsterEventType.STEP_FAILURE else ""
                self.lines.append(f"[{len(self.finished)}/{self.total_steps}] {step} {verb} ({took:.1f} s)"
                                  + (f": {reason}" if reason else ""))
            return
        message = entry.user_message or ""
        if event is None and (match := _ITEMS.match(message)):
            self.items = f"{match['what']} {match['done']}/{match['total']}"
            if plain:
                self.lines.append(f"    {message}")
        elif event is None and _SUMMARY.match(message):
            self.lines.append(f"    {message}")
        elif event is None and _level(entry) >= logging.WARNING and not _SKIPPED_STEP.match(message):
            # The console logger shows none of the run's messages: its warnings and errors come here.
            self.lines.append(f"    {logging.getLevelName(_level(entry)).lower()}: {message}")

    def bar(self) -> str:
        done = len(self.finished)
        filled = round(BAR_WIDTH * done / self.total_steps) if self.total_steps else BAR_WIDTH
        now = f" {self.running}" + (f" · {self.items}" if self.items else "") if self.running else ""
        return f"[{'#' * filled}{'-' * (BAR_WIDTH - filled)}] {done}/{self.total_steps} stages{now}"


def _level(entry) -> int:
    level = getattr(entry, "level", logging.INFO)
    if not isinstance(level, int):  # a level's name: its number, if it is one logging knows
        level = logging.getLevelName(str(level).upper())
    return level if isinstance(level, int) else logging.INFO


def step_failure_reason(event) -> str:
    """Why a step failed, in one line: the stage's own message (a StageFailure), a full disk with
    where it is full, else the first error that is not Dagster's wrapper of it (the traceback is
    in the run's events, in the UI)."""
    from haic_resources.storage.disk_full import disk_full_message, serialized_disk_full
    from haic_resources.storage.home import haic_home

    data = getattr(event, "step_failure_data", None)
    if data is None:
        return ""
    if data.user_failure_data is not None and data.user_failure_data.description:
        return " ".join(data.user_failure_data.description.split())
    errors, info = [], data.error
    while info is not None and len(errors) < 20:
        errors.append(info)
        info = info.cause or info.context
    full = serialized_disk_full([e.message for e in errors])
    if full is not None:
        return disk_full_message(full, haic_home().dagster) or ""
    own = [e for e in errors if not e.cls_name.startswith("Dagster")] or errors
    return " ".join(own[0].message.split()) if own else ""


def run_with_progress(instance, run_id: str, total_steps: int, execute: Callable[[], object],
                      out: TextIO | None = None, poll_s: float = 0.5):
    """Call `execute()` (a run with `run_id` on `instance`) and show its progress while it runs
    (on `out`, default: sys.stdout as it is at the call)."""
    out = out or sys.stdout
    plain = not out.isatty()
    progress = RunProgress(total_steps)
    outcome: dict[str, object] = {}

    def work() -> None:
        try:
            outcome["result"] = execute()
        except BaseException as exc:  # re-raised in the caller's thread
            outcome["error"] = exc

    worker = threading.Thread(target=work, name=f"run-{run_id[:8]}", daemon=True)
    worker.start()
    cursor, shown = None, ""
    while True:
        finished = not worker.is_alive()
        while True:  # the events since the last poll
            batch = instance.get_records_for_run(run_id, cursor=cursor, limit=1000)
            for record in batch.records:
                progress.see(record.event_log_entry, plain)
            cursor = batch.cursor
            if not batch.has_more:
                break
        text = "" if plain or finished else progress.bar()
        if progress.lines or text != shown:  # redrawn only when something changed
            if shown:
                out.write("\r" + " " * len(shown) + "\r")
            for line in progress.lines:
                out.write(line + "\n")
            progress.lines.clear()
            out.write(text)
            shown = text
            out.flush()
        if finished:
            break
        worker.join(poll_s)
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["result"]


def step_count(job_def, asset_selection=None) -> int:
    """How many steps a run of the job (over `asset_selection`, if given) has."""
    job = job_def.get_subset(asset_selection=set(asset_selection)) if asset_selection else job_def
    return len(job.graph.node_defs)
