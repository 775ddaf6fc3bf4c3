"""What an operator does with the real daemon, through the webserver's GraphQL API (the UI's own):
backfills of one and of five shards, two runs of one shard at once, and run workers killed with
kill -9. Asserts the exact rows on disk.

One `dagster dev` (webserver, daemon, code server) on 127.0.0.1 serves the whole module; every
test uses its own shards, all registered before the server starts (the landing sensor launches
nothing of its own).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from dagster import DagsterEventType, DagsterInstance
from dagster._core.instance.ref import InstanceRef

from haic_assets.definitions import build_definitions
from haic_assets.platform.partitions import source_shards
from haic_resources.storage.home import prepare_dagster_home
from tests.dagster_dev import dagster_dev
from tests.helpers import SAMPLE_CSV, dagster_instance, land_sample, run_partition
from tests.timing import limit

pytestmark = [pytest.mark.services, pytest.mark.timeout(900)]

SPINE = ["raw_metadata", "metadata_filtered"]
FIVE = [f"webvid_sample__shard_{i}.csv" for i in range(1, 6)]
ONE = "webvid_sample__single.csv"
TWICE = "webvid_sample__twice.csv"
KILLED = ["webvid_sample__killed_a.csv", "webvid_sample__killed_b.csv"]
QUEUED = "webvid_sample__queued.csv"
IN_PROCESS = "webvid_sample__in_process.csv"
ALL = FIVE + [ONE, TWICE, QUEUED, IN_PROCESS] + KILLED
VOLATILE = ["run_id", "decided_at"]  # differ between any two runs


def land(home: Path, partitions: list[str], scratch: Path) -> None:
    for partition in partitions:
        csv = scratch / partition.split("__", 1)[1]
        csv.write_text(SAMPLE_CSV.read_text())
        assert land_sample(home, csv=csv) == partition


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    scratch = tmp_path_factory.mktemp("daemon")
    home = scratch / "home"
    previous = {k: os.environ.get(k) for k in ("HAIC_HOME", "HAIC_PROFILE")}
    os.environ["HAIC_HOME"] = str(home)
    os.environ.pop("HAIC_PROFILE", None)
    for name in ("GEMINI_API_KEY", "OPENAI_API_KEY", "OPENAI_BASE_URL", "HAIC_LLM_PROVIDER"):
        os.environ.pop(name, None)
    try:
        land(home, ALL, scratch)
        dagster_home = prepare_dagster_home()
        with DagsterInstance.from_ref(InstanceRef.from_dir(str(dagster_home))) as instance:
            instance.add_dynamic_partitions(source_shards.name, ALL)
        with dagster_dev(dagster_home, scratch / "dagster_dev.log") as dev:
            with DagsterInstance.from_ref(InstanceRef.from_dir(str(dagster_home))) as instance:
                yield dev, home, instance, scratch
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="module")
def reference(server) -> Path:
    """A home where `haic run` has written the five shards and the single one (every shard of this
    module holds the sample's rows, so any shard's decisions must equal these)."""
    return reference_runs(server[3], FIVE + [ONE])


def table(home: Path, name: str, partition: str) -> pd.DataFrame:
    """A partition's table without the columns that differ between runs, in a stable row order
    (a run over a range of shards records a shard's decisions in another order)."""
    frame = pd.read_parquet(home / "tables" / name / f"{partition}.parquet")
    frame = frame.drop(columns=[c for c in VOLATILE if c in frame])
    return frame.sort_values(list(frame.columns), key=lambda c: c.astype(str)).reset_index(drop=True)


def ledger_of(home: Path, stage: str, partition: str) -> pd.DataFrame:
    return table(home, f"ledger/{stage}", partition)


def reference_runs(scratch: Path, partitions: list[str]) -> Path:
    """What `haic run` (the main job in one process, one partition per run) writes for them."""
    home = scratch / "reference"
    land(home, partitions, scratch)
    saved = os.environ["HAIC_HOME"]
    os.environ["HAIC_HOME"] = str(home)
    try:
        defs = build_definitions()
        with dagster_instance(home) as instance:
            for partition in partitions:
                assert run_partition(defs, instance, partition, selection=[*map(_key, SPINE)]).success
    finally:
        os.environ["HAIC_HOME"] = saved
    return home


def _key(name: str):
    from dagster import AssetKey

    return AssetKey(name)


def assert_same_rows(home: Path, reference: Path, partitions: list[str]) -> None:
    for partition in partitions:
        for stage in SPINE:
            pd.testing.assert_frame_equal(table(home, stage, partition), table(reference, stage, partition))
            pd.testing.assert_frame_equal(ledger_of(home, stage, partition), ledger_of(reference, stage, partition))


def test_backfills_of_one_and_of_five_shards_write_each_shard_as_haic_run_does(server, reference):
    dev, home, instance, scratch = server
    one = dev.launch_backfill([ONE], SPINE)
    five = dev.launch_backfill(FIVE, SPINE)
    for backfill_id in (one, five):
        dev.wait_until(lambda: dev.backfill(backfill_id)["status"] in ("COMPLETED", "COMPLETED_SUCCESS", "FAILED",
                                                                      "COMPLETED_FAILED", "CANCELED"),
                       300, f"backfill {backfill_id}")
        runs = dev.backfill(backfill_id)["runs"]
        assert runs and all(r["status"] == "SUCCESS" for r in runs), runs
    # Five shards at four per run: two runs, a range of four and a range of one.
    ranges = sorted((t["dagster/asset_partition_range_start"], t["dagster/asset_partition_range_end"])
                    for r in dev.backfill(five)["runs"] for t in [{x["key"]: x["value"] for x in r["tags"]}])
    assert ranges == [(FIVE[0], FIVE[3]), (FIVE[4], FIVE[4])]
    assert not list((home / "tables").rglob("all.parquet"))
    for stage in SPINE:
        written = {p.name for p in (home / "tables" / stage).iterdir()}
        assert {f"{p}.parquet" for p in FIVE + [ONE]} <= written
    assert_same_rows(home, reference, FIVE + [ONE])


def test_a_second_run_of_a_shard_waits_for_the_first(server):
    dev, home, instance, scratch = server
    first = dev.launch_run("curate_source", TWICE, SPINE)
    second = dev.launch_run("curate_source", TWICE, SPINE)
    seen = []
    while True:
        statuses = (dev.run_status(first), dev.run_status(second))
        seen.append(statuses)
        assert statuses.count("STARTED") + statuses.count("STARTING") <= 1, seen
        if all(s in ("SUCCESS", "FAILURE", "CANCELED") for s in statuses):
            break
        assert len(seen) < limit(600), seen  # 0.25 s apart: 150 s
        time.sleep(0.25)
    assert statuses == ("SUCCESS", "SUCCESS"), seen
    assert any(s == "QUEUED" for pair in seen for s in pair[1:]), seen  # the second one waited
    book = pd.read_parquet(home / "tables" / "ledger" / "metadata_filtered" / f"{TWICE}.parquet")
    assert set(book["run_id"]) == {second}
    assert sorted(book["verdict"]) == ["dropped", "dropped", "kept", "kept"]


def worker_pid(instance, run_id: str) -> int:
    records = instance.get_records_for_run(run_id, of_type=DagsterEventType.RUN_START).records
    return records[0].event_log_entry.dagster_event.pid


def kill_tree(pid: int) -> None:
    """kill -9 a run worker and the step processes it started (as the OOM killer of a cgroup, or
    `kill -9 -- -PGID`, does): the step in progress dies mid-stage with it."""
    children = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children += [int(c) for c in (task / "children").read_text().split()]
    for child in children:
        kill_tree(child)
    os.kill(pid, signal.SIGKILL)


def step_started(instance, run_id: str, step: str) -> bool:
    records = instance.get_records_for_run(run_id, of_type=DagsterEventType.STEP_START).records
    return any(r.event_log_entry.step_key == step for r in records)


def test_runs_killed_mid_stage_are_failed_free_the_queue_and_resume_from_failure(server, reference):
    dev, home, instance, scratch = server
    killed = [dev.launch_run("curate_source", p, SPINE) for p in KILLED]
    killed_at = {}
    for run_id in killed:  # kill -9 each run worker as soon as metadata_filtered has started
        dev.wait_until(lambda: step_started(instance, run_id, "metadata_filtered"), 180,
                       f"run {run_id} to reach metadata_filtered", interval_s=0.05)
        kill_tree(worker_pid(instance, run_id))
        killed_at[run_id] = time.monotonic()
    # Dead runs hold their slots of max_concurrent_runs (2): a new run waits in the queue until run
    # monitoring (poll_interval_seconds 10) has marked a dead run FAILURE.
    waiting = dev.launch_run("curate_source", QUEUED, SPINE)
    seen, failed_at = [], {}
    while True:
        statuses = [dev.run_status(r) for r in killed] + [dev.run_status(waiting)]
        seen.append(statuses)
        for run_id, status in zip(killed, statuses):
            assert status in ("STARTED", "FAILURE"), seen
            if status == "FAILURE":
                failed_at.setdefault(run_id, time.monotonic())
        if statuses[2] not in ("QUEUED", "NOT_STARTED"):
            assert "FAILURE" in statuses[:2], seen  # it started only once a dead run had been failed
        if statuses[2] in ("SUCCESS", "FAILURE", "CANCELED") and len(failed_at) == 2:
            break
        assert len(seen) < limit(1200), seen  # 0.25 s apart: 300 s
        time.sleep(0.25)
    assert statuses[2] == "SUCCESS", seen
    for run_id in killed:  # within the monitoring interval (plus the daemon's own latency)
        assert failed_at[run_id] - killed_at[run_id] < limit(10 + 20), (failed_at, killed_at)
    # (the code server, which started these workers, may notice first; for a run it did not start,
    # only run monitoring can: the next test)
    # Re-execution from failure is offered now, and completes.
    resumed = [dev.reexecute_from_failure(r) for r in killed]
    assert [dev.wait_for_run(r) for r in resumed] == ["SUCCESS", "SUCCESS"]
    for partition in KILLED:  # the same rows as an untouched run of the same shard, none twice
        assert_same_decisions(home, partition, reference)
    assert_same_decisions(home, QUEUED, reference)


def decisions(home: Path, stage: str, partition: str) -> list[tuple]:
    book = ledger_of(home, stage, partition)
    assert not book.duplicated().any()
    return sorted(zip(book["item_kind"], book["verdict"], book["reason"], book["metric"].astype(str),
                      book["value"].astype(str)))


def assert_same_decisions(home: Path, partition: str, reference: Path) -> None:
    """The partition's decisions and row counts are those `haic run` made for the shard ONE."""
    for stage in SPINE:
        assert decisions(home, stage, partition) == decisions(reference, stage, ONE), stage
        table_rows = len(pd.read_parquet(home / "tables" / stage / f"{partition}.parquet"))
        assert table_rows == len(pd.read_parquet(reference / "tables" / stage / f"{ONE}.parquet")), stage


def test_a_haic_run_killed_mid_stage_is_failed_by_the_daemon_and_re_executed_from_the_ui(server, reference):
    dev, home, instance, scratch = server
    log = (scratch / "haic_run.log").open("wb")
    process = subprocess.Popen([sys.executable, "-m", "haic_cli", "run", IN_PROCESS],
                               env=dict(os.environ, HAIC_HOME=str(home)), stdout=log, stderr=subprocess.STDOUT)
    try:
        def started():
            runs = instance.get_runs(filters=_partition_filter(IN_PROCESS))
            return runs and step_started(instance, runs[0].run_id, "metadata_filtered") and runs[0].run_id
        run_id = dev.wait_until(started, 120, "`haic run` to reach metadata_filtered", interval_s=0.1)
        process.send_signal(signal.SIGKILL)
        process.wait(limit(10))
        killed_at = time.monotonic()
    finally:
        if process.poll() is None:
            process.kill()
        log.close()
    assert dev.run_status(run_id) == "STARTED"
    dev.wait_until(lambda: dev.run_status(run_id) == "FAILURE", 60, f"run {run_id} to be marked FAILURE")
    assert time.monotonic() - killed_at < limit(10 + 20)
    assert any("is gone (killed or crashed)" in (e.message or "") for e in instance.all_logs(run_id))
    # `haic run` records the workspace's code-location origin (haic_platform/run_origin.py), so the
    # webserver re-executes it from failure as it would a run it launched: the remaining steps, once.
    assert instance.get_run_by_id(run_id).remote_job_origin.location_name == "haic"
    resumed = dev.reexecute_from_failure(run_id)
    assert dev.wait_for_run(resumed, 600) == "SUCCESS"
    assert instance.get_run_by_id(resumed).parent_run_id == run_id
    assert_same_decisions(home, IN_PROCESS, reference)


def _partition_filter(partition: str):
    from dagster import RunsFilter

    return RunsFilter(tags={"dagster/partition": partition})


ADD_PARTITION = """
mutation($selector: RepositorySelector!, $name: String!, $key: String!) {
  addDynamicPartition(repositorySelector: $selector, partitionsDefName: $name, partitionKey: $key) {
    __typename ... on AddDynamicPartitionSuccess { partitionKey } ... on PythonError { message } } }"""


def files_and_hashes(home: Path) -> dict[str, str]:
    """sha256 of every file under HAIC_HOME but the Dagster instance's own storage (run and event
    databases, compute logs), which records the attempt itself."""
    import hashlib

    return {str(p.relative_to(home)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(home.rglob("*")) if p.is_file() and p.relative_to(home).parts[0] != "dagster"}


def test_a_key_added_through_graphql_cannot_write_another_partitions_files(server):
    """Issue 23 item 1: `addDynamicPartition` through the UI's GraphQL API (what its "Add partition"
    dialog sends) with a key that climbs into another shard's files, then a backfill of
    metadata_filtered (and, by the annotation batches' door, of bench_captions) for it: the runs
    fail, and not one file under HAIC_HOME changes."""
    dev, home, instance, scratch = server
    assert (home / "tables" / "raw_metadata" / f"{ONE}.parquet").is_file()  # the backfill test wrote it
    before = files_and_hashes(home)
    selector = {"repositoryLocationName": "haic", "repositoryName": "__repository__"}
    hostile = {"source_shards": f"zz__x/../../raw_metadata/{ONE}", "annotation_batches": "../ledger/raw_metadata"}
    for name, key in hostile.items():
        added = dev.graphql(ADD_PARTITION, {"selector": selector, "name": name, "key": key})["addDynamicPartition"]
        assert added == {"__typename": "AddDynamicPartitionSuccess", "partitionKey": key}  # Dagster takes it
    backfills = [dev.launch_backfill([hostile["source_shards"]], ["metadata_filtered"]),
                 dev.launch_backfill([hostile["annotation_batches"]], ["bench_captions"])]
    for backfill_id in backfills:
        dev.wait_until(lambda: dev.backfill(backfill_id)["status"] in ("COMPLETED", "COMPLETED_SUCCESS", "FAILED",
                                                                      "COMPLETED_FAILED", "CANCELED"),
                       300, f"backfill {backfill_id}")
        runs = dev.backfill(backfill_id)["runs"]
        assert [r["status"] for r in runs] == ["FAILURE"], runs
        errors = dev.run_errors(runs[0]["runId"])
        assert "cannot name stored files" in errors, errors
    assert files_and_hashes(home) == before
