"""The job bench_ray_vs_dask.py runs on both executors: the shape of a curate_source shard run, with
timed sleeps for work. `fetch` → `clips` → `human_presence` (tagged for a GPU, as pose steps are:
k8s_op_tags("pose") plus dagster-ray's `dagster-ray/config`), and two caption steps of pool
`llm_gemini` after `fetch`. `kill_chain` is fetch → clips → after, whose `clips` the bench kills.

Each execution of a step appends one JSON line (step, run, pid, parent pid, start, end, CUDA devices)
to $BENCH_FOLDER/executions.jsonl: who ran what, when, and how often. Which executor a job uses is read
from $BENCH_EXECUTOR (the run's process; a Dask worker builds the job only to find a step in it, and
any executor serves for that)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from dagster import In, Nothing, RetryPolicy, job, op

from haic_platform.deployment import k8s_op_tags

RAY_GPU_TAG = {"dagster-ray/config": json.dumps({"num_gpus": 1})}
POOL = "llm_gemini"
STEP_SECONDS = {"fetch": 2.0, "clips": 8.0, "human_presence": 2.0, "captions_a": 3.0, "captions_b": 3.0,
                "after": 1.0}


def record(context, name: str) -> None:
    start = time.time()
    time.sleep(STEP_SECONDS[name])
    with open(Path(os.environ["BENCH_FOLDER"]) / "executions.jsonl", "a") as out:
        out.write(json.dumps({"step": name, "run_id": context.run_id, "pid": os.getpid(), "ppid": os.getppid(),
                              "start": start, "end": time.time(),
                              "cuda": os.environ.get("CUDA_VISIBLE_DEVICES")}) + "\n")


def started(name: str) -> None:
    """A marker the bench waits on before it kills the step's process."""
    with open(Path(os.environ["BENCH_FOLDER"]) / "started.jsonl", "a") as out:
        out.write(json.dumps({"step": name, "pid": os.getpid()}) + "\n")


@op
def fetch(context) -> None:
    record(context, "fetch")


@op(ins={"after": In(Nothing)}, retry_policy=RetryPolicy(max_retries=1))
def clips(context) -> None:
    started("clips")
    record(context, "clips")


@op(ins={"after": In(Nothing)}, tags={**k8s_op_tags("pose"), **RAY_GPU_TAG})
def human_presence(context) -> None:
    record(context, "human_presence")


@op(ins={"after": In(Nothing)}, pool=POOL)
def captions_a(context) -> None:
    record(context, "captions_a")


@op(ins={"after": In(Nothing)}, pool=POOL)
def captions_b(context) -> None:
    record(context, "captions_b")


@op(ins={"after_clips": In(Nothing)})
def after(context) -> None:
    record(context, "after")


def executor():
    if os.environ.get("BENCH_EXECUTOR") == "ray":
        from dagster_ray import ray_executor

        return ray_executor.configured({"ray": {"address": os.environ["BENCH_RAY_ADDRESS"],
                                                "env_vars": ["BENCH_FOLDER", "BENCH_EXECUTOR",
                                                             "BENCH_RAY_ADDRESS", "DAGSTER_HOME", "PYTHONPATH"]}},
                                       name="ray")
    from haic_platform.dask_steps import haic_dask_executor
    from haic_platform.executors import dask_executor_config

    return haic_dask_executor.configured(dask_executor_config(os.environ.get("BENCH_DASK_SCHEDULER", "tcp://127.0.0.1:8786")), name="dask")


@job(executor_def=executor())
def chain():
    done = fetch()
    human_presence(clips(done))
    captions_a(done)
    captions_b(done)


@job(executor_def=executor())
def kill_chain():
    after(clips(fetch()))
