"""`haic run --executor NAME`: the main job for one or more source shards, its steps on an executor.

    haic run webvid__a.csv                                   in this process (as before)
    haic run webvid__a.csv webvid__b.csv --executor dask --scheduler tcp://10.0.0.5:8786

Several shards make one run over their range (as a backfill's run does, `partitions_per_run`);
they are registered in the order given when new. With an executor other than in-process the run
is orchestrated by this process and its steps execute where the executor puts them.
"""

from __future__ import annotations

import argparse
import os
import sys

from haic_assets.platform.executors import EXECUTORS
from haic_resources.storage.home import REPO_ROOT
from haic_resources.storage.landing import shard_of_partition

IN_PROCESS = "in_process"
RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"


def add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--executor", choices=(IN_PROCESS, *[e for e in EXECUTORS if e != "k8s"]),
                        default=IN_PROCESS, help="where the steps run: this process (default), child processes "
                                                 "(multiprocess), or the workers of a Dask scheduler (dask)")
    parser.add_argument("--scheduler", help="the Dask scheduler's address, e.g. tcp://10.0.0.5:8786 "
                                            "(default: settings platform.dask_scheduler, or HAIC_DASK_SCHEDULER)")


def partition_tags(instance, partitions: list[str]) -> dict[str, str]:
    """Register new partitions (in the order given); the tags of one run over all of them."""
    from haic_assets.platform.partitions import source_shards

    known = instance.get_dynamic_partitions(source_shards.name)
    new = [p for p in dict.fromkeys(partitions) if p not in known]
    if new:
        instance.add_dynamic_partitions(source_shards.name, new)
        known = instance.get_dynamic_partitions(source_shards.name)
    if len(partitions) == 1:
        return {"dagster/partition": partitions[0]}
    positions = [known.index(p) for p in partitions]
    if positions != list(range(positions[0], positions[0] + len(partitions))):
        raise ValueError("one run covers a range of partitions: give them in the order they were added, with no "
                         f"gap ({', '.join(known[min(positions):max(positions) + 1])}), or run them one at a time")
    return {RANGE_START: partitions[0], RANGE_END: partitions[-1]}


def run_on_executor(partitions: list[str], executor: str, scheduler: str | None = None) -> bool:
    """Run the main job over `partitions`; print and return whether it succeeded."""
    from dagster import execute_job
    from dagster._core.definitions.reconstruct import ReconstructableRepository

    from haic_assets.platform.cli import QUIET_CONSOLE, instance_and_definitions
    from haic_assets.platform.jobs import MAIN_JOB

    for partition in partitions:
        shard_of_partition(partition)  # before a key becomes a partition, a ledger or a table path
    if executor == IN_PROCESS and len(partitions) == 1:
        from haic_assets.platform.cli import run_partition

        return run_partition(partitions[0])
    if executor != IN_PROCESS:
        os.environ["HAIC_EXECUTOR"] = executor  # read where the definitions are built: here and in workers
    if scheduler:
        os.environ["HAIC_DASK_SCHEDULER"] = scheduler
    with instance_and_definitions() as (instance, defs):
        tags = partition_tags(instance, partitions)
        if executor == IN_PROCESS:
            result = defs.resolve_job_def(MAIN_JOB).execute_in_process(
                instance=instance, tags=tags, run_config=QUIET_CONSOLE, raise_on_error=False)
        else:
            repository = ReconstructableRepository.for_module("haic_assets.definitions", "defs",
                                                              working_directory=str(REPO_ROOT))
            result = execute_job(repository.get_reconstructable_job(MAIN_JOB), instance=instance, tags=tags,
                                 run_config=QUIET_CONSOLE, raise_on_error=False)
    print(f"{', '.join(partitions)}: run {result.run_id} on {executor} {'SUCCESS' if result.success else 'FAILURE'}")
    return result.success


def cmd_run(args: argparse.Namespace) -> int:
    try:
        for partition in args.partition:
            shard_of_partition(partition)
        return 0 if run_on_executor(args.partition, args.executor, args.scheduler) else 1
    except (ValueError, RuntimeError) as exc:
        print(f"haic run: {exc}", file=sys.stderr)
        return 2
