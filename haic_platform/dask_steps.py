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

What it adds, as dagster-dask does neither:
- Pools. Dagster's op pools (the LLM providers', `llm_gemini` / `llm_openai`) are claimed by its own
  executors only; here a pooled step takes a lease of a Dask `Semaphore` named for the pool, with the
  instance's limit for it (`dagster instance concurrency set llm_gemini 4`, else
  `concurrency.pools.default_limit`), on the worker before it starts, and gives it back when it
  ends; the scheduler frees the lease of a worker that dies. Every run on the scheduler shares it.
  A step waiting for its lease holds its worker's thread meanwhile (steps are not thread-safe, so
  the worker does not start another one).
- Worker resources. A step tagged `dagster-dask/resource_requirements` (pose: `{"GPU": 1}`) runs only
  on workers started with that resource (`dask worker ... --resources GPU=1`); when no worker has
  it, the run says so in an engine event, as the step then waits for one to join.
"""

from __future__ import annotations

from typing import Any, Sequence

import dask.distributed
from dagster import _check as check, executor, multiple_process_executor_requirements
from dagster._core.errors import raise_execution_interrupts
from dagster._core.events import DagsterEvent, EngineEventData
from dagster._utils import iterate_with_context
from dagster_dask.executor import (DaskExecutor, dask_executor, get_dask_resource_requirements,
                                   query_on_dask_worker)


class Sealed:
    """Arguments Dask must pass to the worker untouched (it does not look inside this object)."""

    def __init__(self, *values: Any):
        self.values = values


def pool_semaphore_name(pool: str, limit: int) -> str:
    """The limit is in the name: Dask refuses a semaphore of one name with another limit, so after
    `dagster instance concurrency set` new runs take the new one (runs under the old keep theirs)."""
    return f"haic-pool/{pool}/{limit}"


def run_step_on_worker(dependencies: Sequence[Any], sealed: Sealed, pool: str | None = None,
                       limit: int | None = None) -> Sealed:
    """On a worker: execute one step (`dependencies` only orders it after its upstream steps), inside
    a lease of its pool's semaphore when it has a pool with a limit; its events go back sealed too
    (Dask's size estimate would otherwise walk them, and warn)."""
    if pool is None or limit is None:
        return Sealed(*query_on_dask_worker(dependencies, *sealed.values))
    with dask.distributed.Semaphore(max_leases=limit, name=pool_semaphore_name(pool, limit)):
        return Sealed(*query_on_dask_worker(dependencies, *sealed.values))


def pool_limits(instance, pools: set[str]) -> dict[str, int | None]:
    """Each pool's limit on the instance (its own, else the default; None: unlimited)."""
    limits = {limit.name: limit.limit for limit in instance.event_log_storage.get_pool_limits()}
    default = instance.global_op_concurrency_default_limit
    return {pool: limits.get(pool, default) for pool in pools}


def missing_resources(client, steps) -> dict[str, list[str]]:
    """resource -> the steps that need it, for the resources no worker has now."""
    offered = set()
    for worker in client.scheduler_info(n_workers=-1)["workers"].values():
        offered |= set(worker.get("resources") or {})
    missing: dict[str, list[str]] = {}
    for step in steps:
        for name in get_dask_resource_requirements(step.tags):
            if name not in offered:
                missing.setdefault(name, []).append(step.key)
    return missing


class SealedDaskExecutor(DaskExecutor):
    def execute(self, plan_context, execution_plan):
        check.invariant(plan_context.instance.is_persistent, "Dask execution requires a persistent DagsterInstance")
        if self.cluster_type == "existing":
            cluster = self.cluster_configuration["address"]
        elif self.cluster_type == "local":
            cluster = dask.distributed.LocalCluster(**self.build_dict(plan_context.job_name))
        else:
            raise ValueError(f"cluster type {self.cluster_type!r}: this platform supports 'existing' and 'local'")
        levels = execution_plan.get_steps_to_execute_by_level()
        limits = pool_limits(plan_context.instance, {step.pool for level in levels for step in level if step.pool})
        with dask.distributed.Client(cluster) as client:
            for name, keys in missing_resources(client, [step for level in levels for step in level]).items():
                yield DagsterEvent.engine_event(
                    plan_context, f"no Dask worker offers the resource {name}: steps {', '.join(keys)} wait until one "
                                  f"joins (start it with `dask worker ... --resources {name}=1`)", EngineEventData())
            futures: dict[str, Any] = {}
            for level in levels:
                for step in level:
                    upstream = [futures[key] for step_input in step.step_inputs for key in step_input.dependency_keys]
                    futures[step.key] = client.submit(
                        run_step_on_worker, upstream,
                        Sealed(plan_context.reconstructable_job, plan_context.dagster_run, plan_context.run_config,
                               [step.key], plan_context.instance.get_ref(), execution_plan.known_state),
                        step.pool, limits.get(step.pool) if step.pool else None,
                        key=f"{plan_context.job_name}.{plan_context.run_id}.{step.key}",
                        resources=get_dask_resource_requirements(step.tags))
                    if step.pool and limits.get(step.pool) is not None:
                        yield DagsterEvent.engine_event(
                            plan_context, f"step {step.key} submitted: it takes a slot of pool {step.pool} (limit "
                                          f"{limits[step.pool]}, all runs on this scheduler) before it starts",
                            EngineEventData())
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
