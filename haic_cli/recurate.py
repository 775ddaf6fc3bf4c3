"""`haic recurate`: the re-curation pass, now (what the recuration_sensor runs at platform.recuration_cron).

    haic recurate --dry-run     per partition, the assets the pass would run and why
    haic recurate               run exactly those, one run per partition, in this process

It evaluates the assets' own automation conditions, as the daemon's tick does at its scheduled
pass (haic_assets/platform/automation.py): stale partitions (changed settings, prompt or model,
a changed landing file, newer upstream data, never materialized) and what depends on them, less
those in progress, those whose dependencies are missing or failed, and, without an LLM backend,
the caption stages.
"""

from __future__ import annotations

import argparse
import time

from haic_cli.common import execute_main_job, instance_and_definitions


def register(sub) -> None:
    p = sub.add_parser("recurate", help="run the re-curation pass now: only stale asset partitions",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dry-run", action="store_true", help="only list what would run and why")
    p.set_defaults(func=cmd_recurate)


def cmd_recurate(args: argparse.Namespace) -> int:
    from haic_assets.platform.automation import recuration_plan
    from haic_platform.settings import load_settings
    from haic_assets.stages import settings_fields
    from haic_resources.storage.landing import list_landed, waiting_reason

    with instance_and_definitions() as (instance, defs):
        platform = load_settings(settings_fields()).platform
        for item in list_landed(defs.resources["storage"].landing())[0]:
            waiting = waiting_reason(item, time.time(), platform.landing_complete_after_s,
                                     platform.landing_require_marker)
            if waiting:
                print(f"{item.shard.partition_key}: landing file not read yet: {waiting}")
        requests, planned = recuration_plan(defs, instance)
        if not requests:
            print("Nothing is stale.")
            return 0
        partition = None
        for item in planned:
            if item.partition != partition:
                partition = item.partition
                print(f"{partition}:")
            print(f"  {item.asset.to_user_string()}: {item.reason}")
        if args.dry_run:
            return 0
        results = [execute_main_job(defs, instance, r.partition_key, r.asset_selection, r.tags) for r in requests]
        return 0 if all(results) else 1
