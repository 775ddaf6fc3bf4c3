"""Issue 12 item 5: two writers of one partition never overlap, whatever started them. A step holds
its partition's lock until its outputs are stored; a `haic run` (in-process, outside the run queue)
or a range backfill run that reaches the same stage and partition waits for it."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time

import pandas as pd
import pytest

from haic_platform.partition_lock import partition_locks
from tests.helpers import REPO_ROOT, SAMPLE_PARTITION, dagster_instance, land_sample, ledger, without_llm
from tests.timing import limit

pytestmark = pytest.mark.slow


def test_locks_are_exclusive_between_threads_and_name_the_holder(tmp_path):
    order = []
    log = logging.getLogger("lock-test")
    with partition_locks(tmp_path, ["videos/a", "clips/a"], "run r1 step videos"):
        waiter = threading.Thread(target=lambda: _take(tmp_path, order, log))
        waiter.start()
        time.sleep(0.5)
        order.append("first done")
    waiter.join(limit(10))
    assert order == ["first done", "second in"]
    # A lock file says who holds it (the second holder now), for the log line of the next waiter.
    assert sorted(p.read_text().split(" (pid")[0] for p in (tmp_path / "locks").iterdir()) == [
        "run r2", "run r2"]


def _take(root, order, log):
    with partition_locks(root, ["clips/a", "videos/a"], "run r2", log):  # other order: sorted, no deadlock
        order.append("second in")


def test_haic_run_waits_for_the_partition_being_written_then_writes_it(tmp_path, monkeypatch):
    home = tmp_path / "home"
    without_llm(monkeypatch)
    land_sample(home)
    env = {**os.environ, "HAIC_HOME": str(home)}
    log_file = tmp_path / "run.log"
    with partition_locks(home, [f"raw_metadata/{SAMPLE_PARTITION}"], "run other-run step raw_metadata"):
        with open(log_file, "w") as out:
            proc = subprocess.Popen([sys.executable, "-m", "haic_cli", "run", SAMPLE_PARTITION],
                                    env=env, cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT)
        try:
            _wait_for(lambda: "is being written by run other-run step raw_metadata" in log_file.read_text(), 180)
            time.sleep(2)
            assert proc.poll() is None and not (home / "tables" / "raw_metadata").exists()  # it waited
        except BaseException:
            proc.kill()
            raise
    try:  # released: the run goes on and writes the partition
        _wait_for(lambda: (home / "tables" / "raw_metadata" / f"{SAMPLE_PARTITION}.parquet").exists(), 180)
    finally:
        proc.kill()
        proc.wait(limit(30))
    rows = ledger(home).query("stage == 'raw_metadata'")
    golden = pd.read_csv(REPO_ROOT / "tests" / "golden" / "ledger_sample.csv").query("stage == 'raw_metadata'")
    assert sorted((r.item_id, r.verdict, r.reason) for r in rows.itertuples()) == sorted(
        (r.item_id, r.verdict, r.reason) for r in golden.itertuples())
    assert (f"partition raw_metadata/{SAMPLE_PARTITION} is being written by run other-run step raw_metadata "
            f"(pid {os.getpid()}); waiting for it") in log_file.read_text()
    # The run records the workspace's code location, so the UI can re-execute it (tests/test_daemon_operations.py
    # re-executes a killed `haic run` from failure through the webserver).
    with dagster_instance(home) as instance:
        (run,) = instance.get_runs()
        origin = run.remote_job_origin
        assert (origin.location_name, origin.repository_origin.repository_name, origin.job_name) == (
            "haic", "__repository__", "curate_source")
        assert run.tags["dagster/partition"] == SAMPLE_PARTITION


def _wait_for(condition, timeout_s: float) -> None:
    deadline = time.monotonic() + limit(timeout_s)
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.2)
