"""A run's progress at the terminal for `haic run` / `haic demo`: stage by stage and, inside a
stage, its items, read from the run's own structured events: step events, the stages' progress
reports (engine events whose metadata `haic/progress` holds done and total:
haic_platform/progress.py) and each stage's materialization (its kept / dropped / error
counts). Warnings and errors of the run are printed too (the console logger shows none).

At a terminal a `rich` progress bar (stages done, the running stage, its items) is redrawn and
each stage's summary is printed above it; elsewhere (a log file, CI) plain lines: one per stage
started and finished, and the stages' progress reports as they come.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from dataclasses import dataclass, field
from typing import Callable, TextIO

from dagster import DagsterEventType

from haic_platform.progress import PROGRESS_KEY, ProgressReport

_STEP_EVENTS = {DagsterEventType.STEP_START, DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE,
                DagsterEventType.STEP_SKIPPED}
# Dagster's error for each step after a failed one: the failed step's line already says why.
_SKIPPED_STEP = re.compile(r"^Dependencies for step \S+ failed: .* Not executing\.$")
COUNTS = ("kept", "dropped", "errors", "pending")


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
        event_type = event.event_type if event is not None else None
        if event_type in _STEP_EVENTS:
            self._step(entry, event, step, plain)
        elif event_type == DagsterEventType.ENGINE_EVENT and (report := progress_report(event)) is not None:
            self.items = f"{report.what} {report.done}/{report.total}"
            if plain:
                self.lines.append(f"    {report.line()}")
        elif event_type == DagsterEventType.ASSET_MATERIALIZATION and (line := summary_line(event)):
            self.lines.append(f"    {line}")
        elif event is None and _level(entry) >= logging.WARNING and not _SKIPPED_STEP.match(entry.user_message or ""):
            # The console logger shows none of the run's messages: its warnings and errors come here.
            self.lines.append(f"    {logging.getLevelName(_level(entry)).lower()}: {entry.user_message}")

    def _step(self, entry, event, step: str, plain: bool) -> None:
        if event.event_type == DagsterEventType.STEP_START:
            self.running, self.items = step, ""
            self.started_at[step] = entry.timestamp
            if plain:
                self.lines.append(f"[{len(self.finished) + 1}/{self.total_steps}] {step} started")
            return
        self.finished.append(step)
        if self.running == step:
            self.running, self.items = None, ""
        took = entry.timestamp - self.started_at.get(step, entry.timestamp)
        verb = {DagsterEventType.STEP_SUCCESS: "done", DagsterEventType.STEP_FAILURE: "FAILED",
                DagsterEventType.STEP_SKIPPED: "skipped"}[event.event_type]
        reason = step_failure_reason(event) if event.event_type == DagsterEventType.STEP_FAILURE else ""
        self.lines.append(f"[{len(self.finished)}/{self.total_steps}] {step} {verb} ({took:.1f} s)"
                          + (f": {reason}" if reason else ""))

    def now(self) -> str:
        """The running stage and its items, for the bar's label."""
        return (self.running or "") + (f" · {self.items}" if self.running and self.items else "")


def progress_report(event) -> ProgressReport | None:
    """The stage's progress report an engine event carries (None: another engine event)."""
    data = getattr(event, "event_specific_data", None)
    metadata = getattr(data, "metadata", None) or {}
    value = metadata.get(PROGRESS_KEY)
    return ProgressReport(**value.value) if value is not None else None


def summary_line(event) -> str:
    """"<stage> [<partition>]: 2 kept, 1 dropped, 0 error" from a stage's materialization metadata
    (per item kind where a stage decides on several); "" for an output that records no decisions."""
    materialization = event.event_specific_data.materialization
    metadata = {k: v.value for k, v in (materialization.metadata or {}).items()}
    kinds = sorted({k.split("_", 1)[1] for k in metadata if k.startswith("kept_")})
    parts = []
    for suffix in ([f"_{kind}" for kind in kinds] or [""]):
        if f"kept{suffix}" not in metadata:
            continue
        counts = {name: int(metadata.get(f"{name}{suffix}", 0)) for name in COUNTS}
        parts.append(f"{counts['kept']} kept, {counts['dropped']} dropped, {counts['errors']} error"
                     + (f", {counts['pending']} pending" if counts["pending"] else "")
                     + (f" ({suffix[1:]})" if suffix else ""))
    if not parts:
        return ""
    return f"{materialization.asset_key.to_user_string()} [{materialization.partition}]: {'; '.join(parts)}"


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
    with _Display(out, plain, total_steps) as display:
        worker.start()
        cursor = None
        while True:
            finished = not worker.is_alive()
            while True:  # the events since the last poll
                batch = instance.get_records_for_run(run_id, cursor=cursor, limit=1000)
                for record in batch.records:
                    progress.see(record.event_log_entry, plain)
                cursor = batch.cursor
                if not batch.has_more:
                    break
            display.show(progress)
            if finished:
                break
            worker.join(poll_s)
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["result"]


class _Display:
    """Lines as they come; at a terminal, under them, rich's bar of the run's stages."""

    def __init__(self, out: TextIO, plain: bool, total_steps: int):
        self.out, self.plain = out, plain
        if not plain:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.bar = Progress(BarColumn(), MofNCompleteColumn(), TextColumn("stages {task.description}"),
                                TimeElapsedColumn(), console=Console(file=out), transient=True)
            self.task = self.bar.add_task("", total=total_steps)

    def __enter__(self):
        if not self.plain:
            self.bar.start()
        return self

    def show(self, progress: RunProgress) -> None:
        for line in progress.lines:
            if self.plain:
                self.out.write(line + "\n")
            else:
                self.bar.console.print(line, markup=False, highlight=False)
        progress.lines.clear()
        if self.plain:
            self.out.flush()
        else:
            self.bar.update(self.task, completed=len(progress.finished), description=progress.now())

    def __exit__(self, *exc) -> None:
        if not self.plain:
            self.bar.stop()


def step_count(job_def, asset_selection=None) -> int:
    """How many steps a run of the job (over `asset_selection`, if given) has."""
    job = job_def.get_subset(asset_selection=set(asset_selection)) if asset_selection else job_def
    return len(job.graph.node_defs)
