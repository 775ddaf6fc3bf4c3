"""The run launcher of the local and single-host profiles: Dagster's default launcher, plus a
health check of each run's worker process, so that run monitoring can end a dead run.

A run whose process is killed (kill -9, OOM killer, a reboot) writes no more events: Dagster
keeps it STARTED forever, it holds one of the `max_concurrent_runs` slots (two such runs stop
every sensor, backfill and schedule run), and "Re-execute from failure" is not offered. Dagster's
run monitoring (dagster.yaml `run_monitoring`) asks the launcher whether the worker is alive;
the default launcher cannot say, so nothing happens. This one can: the worker is the process
that wrote the run's RUN_START event (its pid is in the event) — the code server's run
subprocess for launched runs, the `haic run` process itself for in-process runs. If that pid is
gone, or is now another process (one that started after the run did, or whose start time differs
from the worker's as first seen), the worker is dead and the
monitoring daemon marks the run FAILURE within `poll_interval_seconds`; queued runs start, and the
failed run can be re-executed from failure.

Only for instances whose run workers share the daemon's host (the SQLite local profile; the
PostgreSQL profile as `haic ui` runs it). Kubernetes and ECS use their own launchers' checks.
"""

from __future__ import annotations

import os
import time
from typing import MutableMapping

from dagster import DagsterEventType
from dagster._core.launcher import CheckRunHealthResult, WorkerStatus
from dagster._core.launcher.default_run_launcher import DefaultRunLauncher
from dagster._core.storage.dagster_run import DagsterRun

from haic_resources.processes import proc_stat

# A process that started more than this long after the run's RUN_START event is not the run's
# worker but a newer process that reuses its pid. Generous, because the two times come from
# different clocks (the event's wall clock, the kernel's boot clock) and a VM's wall clock may be
# stepped by seconds while a run is going.
REUSED_PID_SLACK_S = 30.0
# How many runs' workers the launcher remembers (see worker_health's `first_seen`).
REMEMBERED_WORKERS = 10_000


def process_start_ticks(pid: int) -> int | None:
    """Process `pid`'s start time in clock ticks after boot, or None when there is no such live process
    (a zombie writes nothing more)."""
    stat = proc_stat(pid)
    return stat.start_ticks if stat is not None and stat.alive else None


def process_age_s(start_ticks: int) -> float:
    """Seconds since a process that started at `start_ticks` began, on the kernel's boot clock
    (no wall-clock arithmetic: /proc/stat's btime moves whenever the wall clock is stepped)."""
    return time.clock_gettime(time.CLOCK_BOOTTIME) - start_ticks / os.sysconf("SC_CLK_TCK")


def worker_of(instance, run_id: str) -> tuple[int, float] | None:
    """(pid, timestamp) of the run's RUN_START event: the process that executes the run."""
    records = instance.get_records_for_run(run_id, of_type=DagsterEventType.RUN_START, limit=1).records
    if not records:
        return None
    entry = records[0].event_log_entry
    pid = entry.dagster_event.pid if entry.dagster_event else None
    return (pid, entry.timestamp) if pid else None


def worker_health(instance, run: DagsterRun, first_seen: MutableMapping[str, tuple[int, int]]) -> CheckRunHealthResult:
    """Is the run's worker alive? `first_seen` maps run id -> (pid, start ticks) of each worker the
    first time it was seen alive: its start ticks never change for a process, and a newer process
    with the same pid cannot share them. (Kept in the launcher, not in a run tag: a re-execution
    copies its parent's tags, and would be judged by its parent's worker.)"""
    found = worker_of(instance, run.run_id)
    if found is None:
        return CheckRunHealthResult(WorkerStatus.UNKNOWN, "the run has not written RUN_START yet")
    pid, started_at = found
    ticks = process_start_ticks(pid)
    if ticks is None:
        return CheckRunHealthResult(WorkerStatus.FAILED, f"run worker process {pid} is gone (killed or crashed)",
                                    run_worker_id=str(pid))
    known = first_seen.get(run.run_id)
    if known is not None:
        reused = known != (pid, ticks)
    else:  # first sight: a process younger than the run's RUN_START event is a newer one with the pid
        reused = process_age_s(ticks) < time.time() - started_at - REUSED_PID_SLACK_S
        if not reused:
            first_seen[run.run_id] = (pid, ticks)
            while len(first_seen) > REMEMBERED_WORKERS:
                first_seen.pop(next(iter(first_seen)))
    if reused:
        return CheckRunHealthResult(WorkerStatus.FAILED, f"run worker process {pid} is gone (its pid now belongs "
                                                         "to a newer process)", run_worker_id=str(pid))
    return CheckRunHealthResult(WorkerStatus.RUNNING, run_worker_id=str(pid))


class MonitoredRunLauncher(DefaultRunLauncher):
    """DefaultRunLauncher whose runs' workers run monitoring can check (see the module docstring)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._workers_first_seen: dict[str, tuple[int, int]] = {}  # insertion order: oldest first

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        return worker_health(self._instance, run, self._workers_first_seen)


def runs_in_progress(instance, partition: str) -> list[str]:
    """Ids of the runs of `partition` that are queued or running (for in-process runs, which the
    run queue's one-run-per-partition limit does not see)."""
    from dagster import DagsterRunStatus, RunsFilter

    active = [DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING,
              DagsterRunStatus.STARTED]
    return [r.run_id for r in instance.get_runs(filters=RunsFilter(tags={"dagster/partition": partition},
                                                                   statuses=active))]
