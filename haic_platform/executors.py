"""Where a run's steps execute: the executor of every job, chosen by settings.

- `multiprocess` (default): each step in a child process of the run, on the run's machine; the
  steps die with the run's process (platform/run_bound_steps.py).
- `dask`: each step a task on the workers of a Dask `distributed` scheduler (dagster-dask, the
  extra `dask`). Workers are plain processes on any machine that reaches the scheduler over TCP
  and shares HAIC_HOME's storage (S3 or a shared mount) and the Dagster instance (PostgreSQL, or
  the local SQLite instance when all workers share one host); docs/runbook.md says how to add one.
  A worker that dies mid-step (SIGKILL, OOM, a lost machine) is noticed by the scheduler and its
  step runs again on another worker; every step replaces its partitions' files whole, so the
  re-run leaves no duplicate rows.
- `k8s`: each step in its own pod (dagster-k8s's k8s_job_executor, the extra `k8s`), its config
  from `platform.k8s` in settings; pose and decode steps carry their pod resources as op tags
  (platform/deployment.py).

`platform: {executor: dask, dask_scheduler: tcp://host:8786}` in settings.yaml, or HAIC_EXECUTOR
and HAIC_DASK_SCHEDULER in the environment (what `haic run --executor` sets). Every process that
builds the definitions (the run, each worker) reads the same settings, so the job has the same
executor everywhere and run configs need no `execution` block.
"""

from __future__ import annotations

from typing import Any

from dagster import ExecutorDefinition

from haic_platform.deployment import k8s_executor_config
from haic_resources.storage.home import env_setting

EXECUTORS = ("multiprocess", "dask", "k8s")
EXTRA_OF = {"dask": "dask", "k8s": "k8s"}


def executor_name(platform) -> str:
    name = env_setting("HAIC_EXECUTOR") or platform.executor
    if name not in EXECUTORS:
        raise ValueError(f"HAIC_EXECUTOR={name!r}: choose one of {', '.join(EXECUTORS)}")
    return name


def dask_scheduler(platform) -> str:
    address = env_setting("HAIC_DASK_SCHEDULER") or platform.dask_scheduler
    return address if "://" in address else f"tcp://{address}"


def dask_executor_config(address: str) -> dict[str, Any]:
    return {"cluster": {"existing": {"address": address}}}


def job_executor(platform) -> ExecutorDefinition:
    """The executor of every job."""
    name = executor_name(platform)
    if name == "multiprocess":
        from haic_platform.run_bound_steps import run_bound_multiprocess_executor

        return run_bound_multiprocess_executor
    try:
        if name == "dask":
            from haic_platform.dask_steps import haic_dask_executor

            return haic_dask_executor.configured(dask_executor_config(dask_scheduler(platform)), name="dask")
        from dagster_k8s import k8s_job_executor

        return k8s_job_executor.configured(k8s_executor_config(platform.k8s), name="k8s")
    except ImportError as exc:
        raise RuntimeError(f"executor {name!r} needs the optional extra '{EXTRA_OF[name]}': "
                           f"uv sync --extra {EXTRA_OF[name]}  ({exc})") from None
