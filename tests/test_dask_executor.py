"""The main job on a real Dask cluster on 127.0.0.1: a scheduler and two worker processes run a
two-shard backfill of curate_source (`haic run A B --executor dask`), with the ledger rows and
tables of the in-process run, even though the worker running a step is killed (SIGKILL) mid-step:
the step runs again on the other worker and completes, and no row is written twice."""

from __future__ import annotations

import os
import shutil
import signal
import sys
from pathlib import Path

import pandas as pd
import pytest
from dagster import DagsterEventType, DagsterRunStatus

from haic_assets.platform.jobs import shard_run_selection
from haic_cli.run import RANGE_END, RANGE_START
from tests.dask_cluster import dask_cluster
from tests.helpers import SAMPLE_CSV, dagster_instance, home_without_llm, land_sample, wait_until
from tests.timing import limit

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]  # generous: a loaded 2-core machine took 8-10 min

KILLED_STEP = "clips"  # scene detection: long enough to be caught running
# Columns about the execution, not the data: the ledger's run id and time, and whether this execution
# downloaded the video (`fetched`; False when the media store had it). When a worker dies, Dask runs
# again the upstream steps whose results it held (here `videos`), and their second execution finds
# the video already fetched.
RUN_DEPENDENT = {"run_id", "decided_at", "fetched"}


def shards(tmp_path: Path) -> list[Path]:
    """Two small shards of the sample: a real clip and a low-resolution row; a real clip and a row with no verb."""
    rows = SAMPLE_CSV.read_text().splitlines()
    made = []
    for name, picks in (("shard_a.csv", (1, 3)), ("shard_b.csv", (2, 4))):
        path = tmp_path / name
        path.write_text("\n".join([rows[0], *(rows[i] for i in picks)]) + "\n")
        made.append(path)
    return made


def snapshot(home: Path) -> dict[str, pd.DataFrame]:
    """Every Parquet file under tables/ as a frame (ledger rows without their run's id and time)."""
    frames = {}
    for path in sorted((home / "tables").rglob("*.parquet")):
        if path.relative_to(home / "tables").parts[0] == "ledger_history":
            continue  # the rows the second run replaced: only a re-run has them
        frame = pd.read_parquet(path)
        frame = frame.drop(columns=sorted(RUN_DEPENDENT & set(frame.columns)))
        frames[path.relative_to(home / "tables").as_posix()] = frame.reset_index(drop=True)
    return frames



def step_events(instance, run_id: str, kind) -> list:
    return [r.event_log_entry for r in instance.get_records_for_run(run_id, of_type=kind).records]


def test_two_dask_workers_run_a_backfill_like_one_process_and_a_killed_workers_step_runs_again(tmp_path, monkeypatch):
    home = home_without_llm(tmp_path, monkeypatch)
    partitions = [land_sample(home, csv=shard) for shard in shards(tmp_path)]
    env = dict(os.environ, HAIC_HOME=str(home), DASK_DISTRIBUTED__WORKER__DAEMON="False")

    # The reference: the same backfill run in one process.
    from haic_assets.definitions import build_definitions
    from haic_assets.platform.partitions import source_shards

    with dagster_instance(home) as instance:
        instance.add_dynamic_partitions(source_shards.name, partitions)
        defs = build_definitions()
        reference_run = defs.resolve_job_def("curate_source").execute_in_process(  # a shard's run, as `haic run`
            instance=instance, tags={RANGE_START: partitions[0], RANGE_END: partitions[1]},
            asset_selection=shard_run_selection(defs.resolve_asset_graph(), llm_configured=False))
        assert reference_run.success
    reference = snapshot(home)
    assert {k for k in reference if k.startswith("ledger/clips/")} == {f"ledger/clips/{p}.parquet" for p in partitions}
    for produced in ("tables", "media"):  # the dask run starts from nothing too (it fetches the videos again)
        shutil.rmtree(home / produced, ignore_errors=True)
    (home / "warehouse.duckdb").unlink(missing_ok=True)

    # Both workers offer the resource GPU that a pose step asks for (here it runs MoveNet on the CPU), so
    # that human_presence still has a worker after one is killed.
    with dask_cluster(tmp_path / "cluster", env, worker_options=("--resources", "GPU=1")) as cluster:
        assert cluster.address.startswith("tcp://127.0.0.1:")
        workers = cluster.workers
        run = cluster.start([sys.executable, "-m", "haic_cli", "run", *partitions, "--executor", "dask",
                             "--scheduler", cluster.address], "haic_run.log")
        with dagster_instance(home) as instance:
            def killed_step_running():
                runs = [r for r in instance.get_runs() if r.run_id != reference_run.run_id]
                if not runs:
                    return None
                started = [e for e in step_events(instance, runs[0].run_id, DagsterEventType.STEP_START)
                           if e.step_key == KILLED_STEP]
                return started and (runs[0].run_id, started[0].dagster_event.pid)

            run_id, pid = wait_until(killed_step_running, 900, f"step {KILLED_STEP} to start on a worker",
                                     interval_s=0.1)
            assert pid in {w.pid for w in workers}  # the step runs in a worker, not in `haic run`
            os.kill(pid, signal.SIGKILL)
            assert run.wait(timeout=limit(900)) == 0, (cluster.folder / "haic_run.log").read_text()[-3000:]
            assert instance.get_run_by_id(run_id).status == DagsterRunStatus.SUCCESS
            starts = [e for e in step_events(instance, run_id, DagsterEventType.STEP_START) if e.step_key == KILLED_STEP]
            successes = [e for e in step_events(instance, run_id, DagsterEventType.STEP_SUCCESS)
                         if e.step_key == KILLED_STEP]
            survivor = ({w.pid for w in workers} - {pid}).pop()
            assert [e.dagster_event.pid for e in starts] == [pid, survivor]  # retried on the other worker
            assert [e.dagster_event.pid for e in successes] == [survivor]
        assert f"run {run_id} on dask SUCCESS" in (cluster.folder / "haic_run.log").read_text()

    after = snapshot(home)
    assert sorted(after) == sorted(reference)
    for name, frame in reference.items():
        pd.testing.assert_frame_equal(after[name], frame, obj=name)
    ledger = pd.concat([f for k, f in after.items() if k.startswith("ledger/")], ignore_index=True)
    assert not ledger.duplicated(["stage", "partition", "item_id"]).any()
