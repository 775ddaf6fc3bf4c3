"""`haic recurate`: re-materialize only what is stale (changed settings, prompt, model or data).

    haic recurate --dry-run     list the stale asset partitions and why
    haic recurate               run exactly those (what the re-curation schedule does)
"""

from __future__ import annotations

import argparse

from haic_cli.common import execute_main_job, instance_and_definitions


def register(sub) -> None:
    p = sub.add_parser("recurate", help="re-materialize only stale asset partitions (what the schedule does)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dry-run", action="store_true", help="only list what is stale and why")
    p.set_defaults(func=cmd_recurate)


def cmd_recurate(args: argparse.Namespace) -> int:
    from haic_assets.platform.jobs import MAIN_JOB
    from haic_assets.platform.recuration import landing_state, recuration_requests, summarize
    from haic_assets.platform.settings import load_settings
    from haic_assets.stages import settings_fields

    with instance_and_definitions() as (instance, defs):
        landing = landing_state(defs.resources["storage"], load_settings(settings_fields()).platform)
        requests, stale = recuration_requests(instance, defs.resolve_job_def(MAIN_JOB), defs.resolve_asset_graph(),
                                              landing=landing)
        waiting = {p: v.waiting for p, v in landing.items() if v.waiting}
        for partition, reason in waiting.items():
            print(f"{partition}: landing file not read yet: {reason}")
        if not requests:
            print("Nothing is stale.")
            return 0
        for partition, reasons in summarize(stale).items():
            print(f"{partition}:")
            for reason in reasons:
                print(f"  {reason}")
        if args.dry_run:
            return 0
        results = [execute_main_job(defs, instance, r.partition_key, r.asset_selection, r.tags) for r in requests]
        return 0 if all(results) else 1
