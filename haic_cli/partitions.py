"""`haic partitions`: the registered partitions, and a safe way to remove a mistaken one.

    haic partitions list                     every partition key, by kind (source shards, batches, models)
    haic partitions rm KEY --dry-run         what removing KEY would delete
    haic partitions rm KEY                   delete it: its registration, its tables and ledger rows,
                                             its previews, manifests and exports, and its history in the UI

What stays: the landing file (the provider's data: delete it yourself, or the landing sensor adds a
new version of it again), human annotations (annotations/<batch>/), cut clips (named by clip, and
shared with releases), and, where the instance keeps its event log in SQLite (the local
profile), the old materialization events (that storage cannot wipe one partition; the UI lists
only registered partitions). A partition with a run queued or in progress is not removed. A key that can
name no stored files (one that came in through the UI or GraphQL with '/' or '..' in it) owns none,
so only its registration is removed: the files of the partition it points at are never touched.
"""

from __future__ import annotations

import argparse

from haic_cli.common import UserError, instance_and_definitions
from haic_core.partition_keys import key_problem

# Where a partition's files live besides tables/<table>/<key>.parquet (store -> folder prefixes).
EXPORT_FOLDERS = ("haic_train/{key}/", "annotation_tasks/{key}/")


def register(sub) -> None:
    p = sub.add_parser("partitions", help="list partitions, or remove a mistaken one with its tables and ledger",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    verbs = p.add_subparsers(dest="verb", required=True, metavar="VERB")
    verbs.add_parser("list", help="every partition key, by kind").set_defaults(func=cmd_list)
    rm = verbs.add_parser("rm", help="remove a partition with its tables, ledger rows and history",
                          description="Remove a partition: its registration, tables, ledger rows, previews, "
                                      "manifests, exports and history in the UI (see `haic partitions --help`).")
    rm.add_argument("key", help="the partition key")
    rm.add_argument("--dry-run", action="store_true", help="only list what would be removed")
    rm.set_defaults(func=cmd_rm)


def partition_kinds():
    from haic_platform.evaluation.registry import eval_models
    from haic_assets.platform.partitions import annotation_batches, source_shards

    return (source_shards, annotation_batches, eval_models)


def cmd_list(args: argparse.Namespace) -> int:
    with instance_and_definitions() as (instance, _):
        for kind in partition_kinds():
            keys = instance.get_dynamic_partitions(kind.name)
            print(f"{kind.name} ({len(keys)}):")
            for key in keys:
                problem = key_problem(key)
                print(f"  {key}" + (f"    <- names no files: {problem}; `haic partitions rm` it" if problem else ""))
    return 0


def cmd_rm(args: argparse.Namespace) -> int:
    from haic_platform.run_launcher import runs_in_progress

    with instance_and_definitions() as (instance, defs):
        kinds = [kind.name for kind in partition_kinds() if instance.has_dynamic_partition(kind.name, args.key)]
        if not kinds:
            raise UserError(f"no partition {args.key!r} (`haic partitions list` shows them)", exit_code=1)
        busy = runs_in_progress(instance, args.key)
        if busy:
            raise UserError(f"runs {', '.join(busy)} of {args.key!r} are queued or running: wait for them, or "
                            "terminate them in the UI, then remove it", exit_code=1)
        storage = defs.resources["storage"]
        files = owned_files(storage, args.key)
        assets = materialized_assets(instance, defs, args.key)
        verb = "would remove" if args.dry_run else "removing"
        print(f"{args.key}: {verb} its registration ({', '.join(kinds)}), {sum(len(v) for v in files.values())} "
              f"files and the history of {len(assets)} assets")
        for store, keys in files.items():
            for key in keys:
                print(f"  {store}/{key}")
        for asset in assets:
            print(f"  history: {asset.to_user_string()}")
        if args.dry_run:
            return 0
        for store, keys in files.items():
            target = getattr(storage, store)()
            target = getattr(target, "store", target)  # the table store's objects
            for key in keys:
                target.delete(key)
        try:
            for asset in assets:
                instance.wipe_asset_partitions(asset, [args.key])
        except NotImplementedError:  # SQLite event logs cannot wipe one partition of an asset
            print(f"  (this instance's event log keeps the history of {args.key}; the UI no longer lists the "
                  "partition once it is unregistered)")
        for kind in kinds:
            instance.delete_dynamic_partition(kind, args.key)
        if files.get("tables"):
            defs.resources["warehouse"].refresh(storage.tables().local_root())
    print(f"{args.key}: removed")
    return 0


def owned_files(storage, key: str) -> dict[str, list[str]]:
    """store name -> the keys of the files that belong to partition `key` (none for a key that can
    name no files: its files were never written, and another partition's must not be matched)."""
    if key_problem(key) is not None:
        return {}
    from haic_assets.stages import STAGE_NAMES

    per_stage = {f"{stage}__{key}.parquet" for stage in STAGE_NAMES}  # contact sheets, LLM batch history
    tables = [k for k in storage.tables().store.list("")
              if k.rsplit("/", 1)[-1] == f"{key}.parquet" or k.rsplit("/", 1)[-1] in per_stage]
    media = [k for k in storage.media().list("manifests/") if k == f"manifests/{key}.jsonl"]
    exports = [k for k in storage.exports().list("")
               if any(k.startswith(f"previews/{stage}/{key}/") for stage in STAGE_NAMES)
               or any(k.startswith(folder.format(key=key)) for folder in EXPORT_FOLDERS)]
    return {name: sorted(found) for name, found in (("tables", tables), ("media", media), ("exports", exports))
            if found}


def materialized_assets(instance, defs, key: str) -> list:
    """The assets with materializations (or check results) of partition `key` in the instance."""
    from dagster import AssetRecordsFilter

    found = []
    for asset in sorted(defs.resolve_asset_graph().get_all_asset_keys(), key=lambda k: k.to_user_string()):
        records = instance.fetch_materializations(AssetRecordsFilter(asset_key=asset, asset_partitions=[key]),
                                                  limit=1).records
        if records:
            found.append(asset)
    return found
