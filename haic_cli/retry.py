"""`haic retry`: re-process only the items whose last verdict is `error`.

    haic retry PARTITION [--stage S] [--dry-run]   retry a partition's failed items
    haic retry --release ITEM                      let a quarantined item be retried again

An item that fails `--max-attempts` retries in a row is quarantined: later retries pass it over.
"""

from __future__ import annotations

import argparse

import pandas as pd

from haic_platform.ledger import write_ledger
from haic_platform.retry import (ATTEMPTS_TABLE, PLAN_TABLE, empty_attempts, plan_retry, quarantine_reasons,
                                        record_attempts, release, retry_tags)
from haic_cli.common import UserError, execute_main_job, instance_and_definitions
from haic_resources.storage.landing import closest_keys


def register(sub) -> None:
    p = sub.add_parser("retry", help="re-process only the failed items of a partition",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("partition", nargs="?", help="<source>__<shard file name>")
    p.add_argument("--stage", help="only this stage's failed items")
    p.add_argument("--max-attempts", type=int, default=3, help="quarantine an item after this many failed retries")
    p.add_argument("--dry-run", action="store_true", help="only list what would be retried")
    p.add_argument("--release", metavar="ITEM", help="release a quarantined item")
    p.set_defaults(func=cmd_retry)


def cmd_retry(args: argparse.Namespace) -> int:
    if args.release:
        return release_item(args.release)
    if not args.partition:
        raise UserError("give a PARTITION (or --release ITEM)")
    return run_retry(args.partition, args.stage, args.max_attempts, args.dry_run, execute_main_job)


def _read(tables, name: str, partition: str) -> pd.DataFrame | None:
    return tables.read(name, partition)


def partition_ledger(tables, stages: list[str], partition: str) -> pd.DataFrame:
    frames = [f for s in stages if (f := _read(tables, f"ledger/{s}", partition)) is not None and len(f)]
    if not frames:
        return pd.DataFrame(columns=["stage", "partition", "item_id", "verdict", "reason"])
    return pd.concat(frames, ignore_index=True)


def retry_selection(defs, job_name: str, stages: list[str]) -> list:
    """The retried stages and everything downstream of them in the main job."""
    from dagster import AssetKey, AssetSelection

    graph = defs.resolve_asset_graph()
    job_keys = set(defs.resolve_job_def(job_name).asset_layer.selected_asset_keys)
    chosen = AssetSelection.assets(*[AssetKey(s) for s in stages]).downstream().resolve(graph)
    return sorted(chosen & job_keys, key=lambda k: k.to_user_string())


def run_retry(partition: str, stage: str | None, max_attempts: int, dry_run: bool, execute) -> int:
    """`haic retry PARTITION [--stage S]`; `execute(defs, instance, partition, selection, tags)`
    runs the main job and returns whether it succeeded."""
    from haic_assets.platform.jobs import MAIN_JOB
    from haic_assets.platform.resources import build_resources
    from haic_assets.stages import STAGE_NAMES

    tables = build_resources()["storage"].tables()
    known_partition(partition)
    attempts = _read(tables, ATTEMPTS_TABLE, partition)
    attempts = empty_attempts() if attempts is None else attempts
    plan = plan_retry(partition_ledger(tables, list(STAGE_NAMES), partition), attempts, partition, stage,
                      list(STAGE_NAMES))
    for line in plan.describe():
        print(line)
    if not plan.count:
        print(f"{partition}: nothing to retry" + (" (only quarantined items: haic retry --release ITEM)"
                                                   if plan.quarantined else ""))
        return 0
    if dry_run:
        return 0
    tables.write(PLAN_TABLE, partition, pd.DataFrame(
        [{"stage": s, "item_id": i} for s, items in plan.retry.items() for i in items]))
    from haic_platform.run_launcher import runs_in_progress

    with instance_and_definitions() as (instance, defs):
        busy = runs_in_progress(instance, partition)
        if busy:
            print(f"{partition}: runs {', '.join(busy)} are queued or running; retry when they have ended")
            return 1
        ok = execute(defs, instance, partition, retry_selection(defs, MAIN_JOB, plan.stages), retry_tags(plan))
    for name, items in plan.retry.items():
        new = _read(tables, f"ledger/{name}", partition)
        if new is None:
            continue
        attempts = record_attempts(attempts, name, items, new[new["item_id"].astype(str).isin(items)], max_attempts)
        write_ledger(tables, name, partition, quarantine_reasons(new, name, attempts))
    tables.write(ATTEMPTS_TABLE, partition, attempts)
    held = attempts[attempts["quarantined"]]
    if len(held):
        print(f"quarantined (skipped until released): {', '.join(held['item_id'])}")
    return 0 if ok else 1


def release_item(item_id: str) -> int:
    """`haic retry --release ITEM`: in every partition's attempts table."""
    from haic_assets.platform.resources import build_resources

    tables = build_resources()["storage"].tables()
    released = 0
    for partition in tables.partitions(ATTEMPTS_TABLE):
        table, n = release(tables.read(ATTEMPTS_TABLE, partition), item_id)
        if n:
            tables.write(ATTEMPTS_TABLE, partition, table)
            released += n
            print(f"{item_id}: released in {partition}; the next `haic retry {partition}` re-processes it")
    if not released:
        print(f"{item_id} is not quarantined")
    return 0 if released else 1


def known_partition(partition: str) -> None:
    """UserError unless `partition` is a registered source shard (with the closest known keys)."""
    import os

    from dagster import DagsterInstance

    from haic_assets.platform.partitions import source_shards
    from haic_resources.storage.home import prepare_dagster_home

    os.environ["DAGSTER_HOME"] = str(prepare_dagster_home())
    with DagsterInstance.get() as instance:
        known = instance.get_dynamic_partitions(source_shards.name)
    if partition not in known:
        guesses = closest_keys(partition, known)
        raise UserError(f"no partition {partition!r}" + (f"; did you mean: {', '.join(guesses)}?" if guesses else
                                                         "; `haic funnel` lists the sources with rows"), exit_code=1)
