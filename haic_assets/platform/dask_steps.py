"""dagster-dask's executor, with its task arguments sealed from Dask's graph parser.

Since Dask's task-spec rewrite (dask/distributed 2025), `Client.submit` walks every tuple among
a task's arguments looking for futures. Dagster's run (`DagsterRun`) is a NamedTuple holding
`@record`s that refuse iteration (a partition-range run's `KeyRangesPartitionsSubset`), so
dagster-dask 0.29.27's `DaskExecutor` fails any run over a range of partitions before a step
starts ("Iteration is not allowed on `@record`"). This executor is the same: same config schema,
same worker function (`dagster_dask.executor.query_on_dask_worker`), same ordering of steps
through their upstream futures; task keys name the run (two runs of a job never share a
result); only the Dagster objects travel inside a `Sealed` box (pickled
as usual, never walked). Only existing clusters (`cluster: {existing: {address}}`) and local ones.
"""

from __future__ import annotations

from typing import Any, Sequence

import dask.distributed
from dagster import _check as check, executor, multiple_process_executor_requirements
from dagster._core.errors import raise_execution_interrupts
from dagster._core.events import DagsterEvent
from dagster._utils import iterate_with_context
from dagster_dask.executor import (DaskExecutor, dask_executor, get_dask_resource_requirements,
                                   query_on_dask_worker)


class Sealed:
    """Arguments Dask must pass to the worker untouched (it does not look inside this object)."""

    def __init__(self, *values: Any):
        self.values = values


def run_step_on_worker(dependencies: Sequence[Any], sealed: Sealed) -> Sealed:
    """On a worker: execute one step (`dependencies` only orders it after its upstream steps); its
    events go back sealed too (Dask's size estimate would otherwise walk them, and warn)."""
    return Sealed(*query_on_dask_worker(dependencies, *sealed.values))


class SealedDaskExecutor(DaskExecutor):
    def execute(self, plan_context, execution_plan):
        check.invariant(plan_context.instance.is_persistent, "Dask execution requires a persistent DagsterInstance")
        if self.cluster_type == "existing":
            cluster = self.cluster_configuration["address"]
        elif self.cluster_type == "local":
            cluster = dask.distributed.LocalCluster(**self.build_dict(plan_context.job_name))
        else:
            raise ValueError(f"cluster type {self.cluster_type!r}: this platform supports 'existing' and 'local'")
        with dask.distributed.Client(cluster) as client:
            futures: dict[str, Any] = {}
            for level in execution_plan.get_steps_to_execute_by_level():
                for step in level:
                    upstream = [futures[key] for step_input in step.step_inputs for key in step_input.dependency_keys]
                    futures[step.key] = client.submit(
                        run_step_on_worker, upstream,
                        Sealed(plan_context.reconstructable_job, plan_context.dagster_run, plan_context.run_config,
                               [step.key], plan_context.instance.get_ref(), execution_plan.known_state),
                        key=f"{plan_context.job_name}.{plan_context.run_id}.{step.key}", resources=get_dask_resource_requirements(step.tags))
            done = dask.distributed.as_completed(list(futures.values()), with_results=True)
            for _future, events in iterate_with_context(raise_execution_interrupts, done):
                for event in events.values:
                    yield check.inst(event, DagsterEvent)


@executor(name="dask", config_schema=dask_executor.config_schema,
          requirements=multiple_process_executor_requirements())
def haic_dask_executor(init_context):
    """dagster-dask's executor (same config) whose task arguments Dask does not walk (see module doc)."""
    ((cluster_type, cluster_configuration),) = init_context.executor_config["cluster"].items()
    return SealedDaskExecutor(cluster_type, cluster_configuration)
