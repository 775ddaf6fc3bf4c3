"""The run launcher's health check of a run's worker process (what run monitoring asks to end a
dead run): a real DagsterInstance, a real RUN_START event carrying a real child process's pid,
and the child killed, alive, or replaced by a process that reuses its pid."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from dagster import DagsterEvent, DagsterEventType, DagsterInstance
from dagster._core.events.log import EventLogEntry
from dagster._core.launcher import WorkerStatus
from dagster._core.test_utils import create_run_for_test

from haic_platform.run_launcher import process_start_ticks, worker_health
from tests.timing import limit


@pytest.fixture
def instance():
    with DagsterInstance.ephemeral() as instance:
        yield instance


SLEEPER = [sys.executable, "-c", f"import time; time.sleep({limit(120)})"]  # a worker that lives through the test


@pytest.fixture
def worker():
    process = subprocess.Popen(SLEEPER)
    yield process
    process.kill()
    process.wait()


def started_run(instance, pid: int, event_time: float, tags=None):
    """A run whose RUN_START event says process `pid` executes it, stamped `event_time`."""
    run = create_run_for_test(instance, job_name="curation", tags=tags)
    event = DagsterEvent(DagsterEventType.RUN_START.value, job_name="curation", pid=pid)
    instance.store_event(EventLogEntry(error_info=None, level=20, user_message="", run_id=run.run_id,
                                       timestamp=event_time, dagster_event=event))
    return run


def test_a_live_worker_is_running_and_remembered_by_its_start_ticks(instance, worker):
    run, seen = started_run(instance, worker.pid, time.time()), {}
    assert worker_health(instance, run, seen).status == WorkerStatus.RUNNING
    assert seen == {run.run_id: (worker.pid, process_start_ticks(worker.pid))}
    assert worker_health(instance, run, seen).status == WorkerStatus.RUNNING


def test_a_re_execution_is_judged_by_its_own_worker_not_its_parents(instance, worker):
    parent, seen = started_run(instance, worker.pid, time.time()), {}
    assert worker_health(instance, parent, seen).status == WorkerStatus.RUNNING
    with subprocess.Popen(SLEEPER) as second:
        try:
            child = started_run(instance, second.pid, time.time(), tags=parent.tags)
            assert worker_health(instance, child, seen).status == WorkerStatus.RUNNING
            assert worker_health(instance, parent, seen).status == WorkerStatus.RUNNING
        finally:
            second.kill()


def test_a_killed_worker_is_failed(instance, worker):
    run = started_run(instance, worker.pid, time.time())
    worker.kill()
    worker.wait()
    result = worker_health(instance, run, {})
    assert result.status == WorkerStatus.FAILED
    assert result.msg == f"run worker process {worker.pid} is gone (killed or crashed)"


def test_a_pid_that_another_process_took_after_first_sight_is_failed(instance, worker):
    run = started_run(instance, worker.pid, time.time())
    result = worker_health(instance, run, {run.run_id: (worker.pid, process_start_ticks(worker.pid) - 1)})
    assert result.status == WorkerStatus.FAILED
    assert "its pid now belongs to a newer process" in result.msg


def test_a_process_younger_than_the_runs_start_is_not_its_worker(instance, worker):
    run = started_run(instance, worker.pid, time.time() - 600)  # the run started 10 minutes before this process
    seen = {}
    result = worker_health(instance, run, seen)
    assert result.status == WorkerStatus.FAILED
    assert "its pid now belongs to a newer process" in result.msg
    assert seen == {}


def test_a_run_without_run_start_is_unknown(instance):
    run = create_run_for_test(instance, job_name="curation")
    assert worker_health(instance, run, {}).status == WorkerStatus.UNKNOWN
