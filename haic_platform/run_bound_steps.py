"""The multiprocess executor of the local and single-host profiles: Dagster's own, whose step
processes die with their run.

Dagster starts each step in a child process of the run worker (start method `spawn`). After kill -9
of the worker (the OOM killer, an operator), a step already started ran on: it recorded STEP_START
and STEP_SUCCESS after run monitoring had marked the run FAILURE, and wrote its tables behind the
back of the re-execution. Here the steps start from a fork server (Dagster's start method
`forkserver`) that preloads `haic_resources.fork_server_children`: the server dies with the run
worker and each step dies with the server, both by the kernel, at once.

Same config as Dagster's default executor (`multiprocess` or `in_process`, with their options); a
`multiprocess` config that names no `start_method` gets this one. A fork server starts once per
run worker and copies its environment then: each run's worker is a fresh process, so a run sees
the environment of its launch, as before.
"""

from __future__ import annotations

from typing import Any, Mapping

from dagster import executor, multi_or_in_process_executor

FORK_SERVER_CHILDREN = "haic_resources.fork_server_children"
STEPS_FROM_FORK_SERVER = {"forkserver": {"preload_modules": [FORK_SERVER_CHILDREN]}}


def with_run_bound_steps(config: Mapping[str, Any]) -> Mapping[str, Any]:
    """The executor config, with the fork server of run-bound steps where `multiprocess` names no
    start method."""
    multiprocess = config.get("multiprocess")
    if multiprocess is None or multiprocess.get("start_method"):
        return config
    return {"multiprocess": {**multiprocess, "start_method": STEPS_FROM_FORK_SERVER}}


@executor(name="multi_or_in_process_executor", config_schema=multi_or_in_process_executor.config_schema,
          requirements=multi_or_in_process_executor.get_requirements)
def run_bound_multiprocess_executor(init_context):
    """Dagster's default executor; its step processes die with the run worker (module docstring)."""
    return multi_or_in_process_executor.executor_creation_fn(
        init_context._replace(executor_config=with_run_bound_steps(init_context.executor_config)))
