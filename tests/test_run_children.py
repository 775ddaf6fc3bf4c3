"""A run's children die with it. After kill -9 of a run's worker (the OOM killer, an operator), no
step process and no decoder it started runs on: nothing writes a step event after run monitoring
has marked the run FAILURE, and nothing holds the video it was fetching.

The run is held at a point the test controls (tests/held_fetch.py): its videos step is fetching
the shard's one video from a server that never finishes sending it. The fetch runs in a decoder
child of the step, the step in a child of the run worker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from contextlib import contextmanager

import pytest
from dagster import DagsterEventType, DagsterInstance
from dagster._core.instance.ref import InstanceRef

from haic_assets.platform.partitions import source_shards
from haic_resources.storage.home import prepare_dagster_home
from tests.dagster_dev import dagster_dev
from tests.held_fetch import PARTITION, land_remote_shard, stalling  # noqa: F401 (fixture)
from tests.helpers import REPO_ROOT, wait_until
from tests.process_tree import describe, descendants, still_alive

pytestmark = pytest.mark.slow

HELD = ["raw_metadata", "metadata_filtered", "videos"]


@contextmanager
def kill_at_exit(tree: list):
    """Whatever of `tree` a failed test leaves running, killed."""
    try:
        yield
    finally:
        for process in still_alive(tree):
            os.kill(process.pid, signal.SIGKILL)


def kill_and_wait(pid: int, tree: list) -> None:
    """kill -9 `pid` alone (not its children): then everything it started must end by itself."""
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not still_alive(tree), 30, f"the children of {pid} to end:\n{describe(still_alive(tree))}")


def test_kill_9_of_a_run_worker_ends_its_steps_and_no_step_event_follows_the_failure(tmp_path, stalling, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("HAIC_HOME", str(home))
    monkeypatch.setenv("HAIC_FETCH_OPEN_NETWORKS", "127.0.0.1/32")
    monkeypatch.delenv("HAIC_PROFILE", raising=False)
    land_remote_shard(home, stalling.url("b.mp4"))
    dagster_home = prepare_dagster_home()
    with DagsterInstance.from_ref(InstanceRef.from_dir(str(dagster_home))) as instance:
        instance.add_dynamic_partitions(source_shards.name, [PARTITION])  # before the server: no sensor run
    tree = []
    with dagster_dev(dagster_home, tmp_path / "dagster_dev.log") as dev, \
            DagsterInstance.from_ref(InstanceRef.from_dir(str(dagster_home))) as instance, kill_at_exit(tree):
        run_id = dev.launch_run("curate_source", PARTITION, HELD)
        wait_until(lambda: stalling.requests, 300, "the videos step to fetch its video", dev.log)
        (start,) = instance.get_records_for_run(run_id, of_type=DagsterEventType.RUN_START).records
        worker = start.event_log_entry.dagster_event.pid
        tree += descendants(worker)
        step = [r.event_log_entry.dagster_event.pid for r in instance.get_records_for_run(
            run_id, of_type=DagsterEventType.STEP_START).records if r.event_log_entry.step_key == "videos"]
        assert step and step[0] in {p.pid for p in tree}, describe(tree)  # the step, a child of the worker
        assert len(tree) >= 3, describe(tree)  # and the decoder it started, holding the fetch

        kill_and_wait(worker, tree)
        wait_until(lambda: stalling.hung_up, 30, "the fetch's connection to close")
        assert dev.wait_for_run(run_id, 120) == "FAILURE"  # run monitoring found the worker gone

        records = instance.get_records_for_run(run_id).records
        failed = min(r.storage_id for r in records
                     if r.event_log_entry.dagster_event_type == DagsterEventType.RUN_FAILURE)
        late = [r.event_log_entry for r in records if r.storage_id > failed]
        assert [(e.dagster_event_type, e.step_key) for e in late if e.step_key] == [], [
            (e.dagster_event_type, e.step_key, e.message) for e in late]
        assert not [r for r in records if r.event_log_entry.dagster_event_type == DagsterEventType.STEP_SUCCESS
                    and r.event_log_entry.step_key == "videos"]
    assert stalling.requests == ["/b.mp4"]  # and nobody asked again after the kill


def test_kill_9_of_haic_run_ends_the_decoders_it_started(tmp_path, stalling):
    home = tmp_path / "home"
    land_remote_shard(home, stalling.url("b.mp4"))
    env = {k: v for k, v in os.environ.items() if k not in ("GEMINI_API_KEY", "OPENAI_API_KEY", "HAIC_PROFILE")}
    env.update(HAIC_HOME=str(home), HAIC_FETCH_OPEN_NETWORKS="127.0.0.1/32")
    with (tmp_path / "run.log").open("wb") as log:
        run = subprocess.Popen([sys.executable, "-m", "haic_cli", "run", PARTITION], env=env, cwd=REPO_ROOT,
                               stdout=log, stderr=subprocess.STDOUT)
    tree = []
    try:
        with kill_at_exit(tree):
            wait_until(lambda: stalling.requests, 300, "`haic run` to fetch its video", tmp_path / "run.log")
            tree += descendants(run.pid)  # the fork server of the decoders, and the decoder holding the fetch
            assert len(tree) >= 2, describe(tree)
            kill_and_wait(run.pid, tree)
            wait_until(lambda: stalling.hung_up, 30, "the fetch's connection to close")
    finally:
        if run.poll() is None:
            run.kill()
        run.wait()
    assert stalling.requests == ["/b.mp4"]
