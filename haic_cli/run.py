"""`haic run`: the main job for one or more source shards, in this process or its steps on an executor.

    haic run webvid__a.csv                                   in this process
    haic run webvid__a.csv webvid__b.csv --executor dask --scheduler tcp://10.0.0.5:8786

Several shards make one run over their range (as a backfill's run does, `partitions_per_run`);
they are registered in the order given when new. With an executor other than in-process the run
is orchestrated by this process and its steps execute where the executor puts them.
"""

from __future__ import annotations

import argparse
import os

from haic_platform.executors import EXECUTORS
from haic_cli.common import QUIET_CONSOLE, UserError, execute_main_job, instance_and_definitions, shard_selection
from haic_resources.storage.home import REPO_ROOT, prepare_dagster_home
from haic_resources.storage.landing import closest_keys, list_shards, shard_of_partition

IN_PROCESS = "in_process"
RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"


def register(sub) -> None:
    p = sub.add_parser("run", help="run the main job for source shards",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("partition", nargs="+", help="<source>__<shard file name>, e.g. webvid_sample__results_sample.csv")
    add_run_options(p)
    p.set_defaults(func=cmd_run)


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

    from haic_assets.platform.jobs import MAIN_JOB

    for partition in partitions:
        shard_of_partition(partition)  # before a key becomes a partition, a ledger or a table path
    if executor == IN_PROCESS and len(partitions) == 1:
        return run_partition(partitions[0])
    if executor != IN_PROCESS:
        os.environ["HAIC_EXECUTOR"] = executor  # read where the definitions are built: here and in workers
    if scheduler:
        os.environ["HAIC_DASK_SCHEDULER"] = scheduler
    with instance_and_definitions() as (instance, defs):
        tags = partition_tags(instance, partitions)
        selection = shard_selection(defs)
        if executor == IN_PROCESS:
            result = defs.resolve_job_def(MAIN_JOB).execute_in_process(
                instance=instance, tags=tags, run_config=QUIET_CONSOLE, raise_on_error=False, asset_selection=selection)
        else:
            repository = ReconstructableRepository.for_module("haic_assets.definitions", "defs",
                                                              working_directory=str(REPO_ROOT))
            result = execute_job(repository.get_reconstructable_job(MAIN_JOB), instance=instance, tags=tags,
                                 run_config=QUIET_CONSOLE, raise_on_error=False, asset_selection=selection)
    print(f"{', '.join(partitions)}: run {result.run_id} on {executor} {'SUCCESS' if result.success else 'FAILURE'}")
    return result.success


def run_partition(partition_key: str) -> bool:
    """Run the main job for one partition, registering the partition first if it is new and its
    file is in the landing zone (UserError, with the closest known keys, when it is neither)."""
    from dagster import DagsterInstance

    from haic_assets.platform.partitions import source_shards
    from haic_assets.platform.resources import build_resources

    shard = shard_of_partition(partition_key)  # before the key becomes a partition, a ledger or a table path
    os.environ["DAGSTER_HOME"] = str(prepare_dagster_home())
    landing = build_resources()["storage"].landing()
    with DagsterInstance.get() as instance:  # checked before the definitions load: a typo answers at once
        known = instance.get_dynamic_partitions(source_shards.name)
    if partition_key not in known and not landing.exists(shard.key):
        guesses = closest_keys(partition_key, known + [s.partition_key for s in list_shards(landing)[0]])
        raise UserError(f"no partition {partition_key!r} and no landing file landing/{shard.key}; "
                        + (f"did you mean: {', '.join(guesses)}?" if guesses else "no shard has landed yet.")
                        + " Nothing was registered.")
    with instance_and_definitions() as (instance, defs):
        if not instance.has_dynamic_partition(source_shards.name, partition_key):
            instance.add_dynamic_partitions(source_shards.name, [partition_key])
            print(f"registered partition {partition_key}")
        return execute_main_job(defs, instance, partition_key)


def cmd_run(args: argparse.Namespace) -> int:
    for partition in args.partition:
        shard_of_partition(partition)
    try:
        return 0 if run_on_executor(args.partition, args.executor, args.scheduler) else 1
    except RuntimeError as exc:  # an executor that cannot start (no Dask scheduler at the address)
        raise UserError(str(exc)) from exc
