"""Dagster's op pools hold on a real Dask cluster: two runs at once of the captions step (pool
`llm_gemini`, limit 1 on the instance), each orchestrated by its own process with the `dask`
executor on a scheduler and two worker processes on 127.0.0.1, never caption at the same time,
though each has a worker to itself. The real google-genai client talks to a local server speaking
Gemini's API. And a pose step asks Dask for the worker resource GPU."""

from __future__ import annotations

import os
import sys

import pandas as pd
import pytest
from dagster import DagsterEventType, DagsterRunStatus

from haic_platform.deployment import DASK_RESOURCES_TAG, k8s_op_tags
from haic_assets.platform.partitions import source_shards
from tests.dask_cluster import dask_cluster
from tests.helpers import REPO_ROOT, dagster_instance, home_without_llm
from tests.llm_servers import SMALL_CLIP, FakeGeminiServer
from tests.test_captions_pipeline import GOOD_CAPTION

PARTITIONS = ("webvid__pool_a.csv", "webvid__pool_b.csv")
CLIPS_PER_PARTITION = 4

# One run of the captions step of curate_source on the Dask executor (HAIC_EXECUTOR, HAIC_DASK_SCHEDULER).
RUNNER = """
import os, sys
from dagster import AssetKey, DagsterInstance, execute_job
from dagster._core.definitions.reconstruct import ReconstructableRepository
repository = ReconstructableRepository.for_module("haic_assets.definitions", "defs", working_directory=sys.argv[2])
with DagsterInstance.get() as instance:
    result = execute_job(repository.get_reconstructable_job("curate_source"), instance=instance,
                         tags={"dagster/partition": sys.argv[1]}, asset_selection=[AssetKey("captions")],
                         raise_on_error=False)
print("run", result.run_id, "SUCCESS" if result.success else "FAILURE")
sys.exit(0 if result.success else 1)
"""


def step_window(instance, run_id: str, step_key: str) -> tuple[float, float]:
    """When the step started and when it succeeded (event timestamps)."""
    def at(kind):
        [record] = [r.event_log_entry for r in instance.get_records_for_run(run_id, of_type=kind).records
                    if r.event_log_entry.step_key == step_key]
        return record.timestamp

    return at(DagsterEventType.STEP_START), at(DagsterEventType.STEP_SUCCESS)


def test_the_pose_step_needs_a_gpu_worker_under_dask():
    assert k8s_op_tags("pose")[DASK_RESOURCES_TAG] == {"GPU": 1}
    assert DASK_RESOURCES_TAG not in k8s_op_tags("decode")


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_two_runs_at_once_on_dask_never_exceed_a_pool_of_one(tmp_path, monkeypatch, video):
    home = home_without_llm(tmp_path, monkeypatch)
    with FakeGeminiServer(GOOD_CAPTION, latency_s=1.0) as server:
        monkeypatch.setenv("GEMINI_API_KEY", "AIza-pool-test")
        monkeypatch.setenv("GEMINI_BASE_URL", server.base_url)
        monkeypatch.setenv("HAIC_LLM_CONCURRENCY", "1")  # a step's calls one after another: 4 s of captioning
        from haic_assets.definitions import build_definitions

        tables = build_definitions().resources["storage"].tables()
        for partition in PARTITIONS:
            tables.write("action_filtered", partition, pd.DataFrame([
                {"clip_id": f"{partition}:{i}", "video_id": f"webvid:{i}", "clip_key": f"k{i}",
                 "clip_path": str(video(SMALL_CLIP)), "description": f"A person waves, take {partition} {i}"}
                for i in range(CLIPS_PER_PARTITION)]))
        with dagster_instance(home) as instance:
            instance.add_dynamic_partitions(source_shards.name, list(PARTITIONS))
            instance.event_log_storage.set_concurrency_slots("llm_gemini", 1)  # dagster instance concurrency set

        env = dict(os.environ, DAGSTER_HOME=str(home / "dagster"), DASK_DISTRIBUTED__WORKER__DAEMON="False")
        with dask_cluster(tmp_path / "cluster", env) as cluster:
            run_env = dict(env, HAIC_EXECUTOR="dask", HAIC_DASK_SCHEDULER=cluster.address)
            runners = [cluster.start([sys.executable, "-c", RUNNER, partition, str(REPO_ROOT)], f"run_{n}.log", run_env)
                       for n, partition in enumerate(PARTITIONS)]
            for n, runner in enumerate(runners):
                assert runner.wait(timeout=1500) == 0, (cluster.folder / f"run_{n}.log").read_text()[-3000:]

        with dagster_instance(home) as instance:
            runs = instance.get_runs()
            assert len(runs) == 2 and {r.status for r in runs} == {DagsterRunStatus.SUCCESS}
            (first_start, first_end), (second_start, second_end) = sorted(
                step_window(instance, run.run_id, "captions") for run in runs)
            assert first_end <= second_start, "two steps of a pool of 1 ran at the same time"
            submitted = [r.event_log_entry.timestamp for run in runs
                         for r in instance.get_records_for_run(run.run_id, of_type=DagsterEventType.ENGINE_EVENT).records
                         if "takes a slot of pool llm_gemini (limit 1" in r.event_log_entry.dagster_event.message]
            assert len(submitted) == 2 and max(submitted) < first_end  # both waited at once: the pool kept them apart
        assert server.max_in_flight == 1 and server.requests["generateContent"] == 2 * CLIPS_PER_PARTITION
        for partition in PARTITIONS:
            assert len(tables.read("captions", partition)) == CLIPS_PER_PARTITION
