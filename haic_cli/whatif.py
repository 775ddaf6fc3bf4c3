"""`haic whatif`: what new thresholds would keep and drop, re-decided from the ledger without decoding.

    haic whatif --set action_filtered.motion_l1_min=0.12 --set human_presence.max_people=8
    haic whatif --set clips.min_length_s=4 --source webvid --partition webvid__part-0001.csv

Settings are named as in settings.yaml (STAGE.SETTING; a setting shared by two stages changes
both). Prints the funnel before and after per source and stage, the items that flip with their
values, and the items whose verdict nothing stored settles, with why; writes the same as CSV and
contact sheets of the flips nearest the new threshold to exports/whatif/<time>/.
"""

from __future__ import annotations

import argparse
import io
from datetime import datetime, timezone

from haic_cli.common import EMPTY_LEDGER, UserError, has_ledger, print_frame, warehouse
from haic_core.whatif import parse_assignments


def register(sub) -> None:
    p = sub.add_parser("whatif", help="re-decide the ledger's items with new thresholds (no decoding)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--set", dest="assignments", action="append", default=[], metavar="STAGE.SETTING=VALUE",
                   help="a new threshold (repeat for more)")
    p.add_argument("--source", help="only this source's items")
    p.add_argument("--partition", help="only this partition's items")
    p.add_argument("--flips", type=int, default=20, help="list at most this many flips per stage (all: -1)")
    p.add_argument("--sheets", type=int, default=2,
                   help="contact sheets of this many flips nearest the new threshold, per stage and direction")
    p.set_defaults(func=cmd_whatif)


def cmd_whatif(args: argparse.Namespace) -> int:
    from haic_assets.platform.resources import build_resources
    from haic_platform.settings import load_settings
    from haic_platform.whatif import flip_sheets, run_whatif
    from haic_assets.stages import settings_fields

    assignments = parse_assignments(args.assignments)
    if not assignments:
        raise UserError("give at least one --set STAGE.SETTING=VALUE, e.g. --set action_filtered.motion_l1_min=0.12")
    conn = warehouse()
    if not has_ledger(conn):
        print(EMPTY_LEDGER)
        return 1
    storage = build_resources()["storage"]
    tables = storage.tables()
    result = run_whatif(conn, tables, assignments, load_settings(settings_fields()), args.source, args.partition)
    if result.funnel.empty:
        where = " and ".join(f"{k} {v!r}" for k, v in (("source", args.source), ("partition", args.partition)) if v)
        raise UserError(f"no ledger rows for {where or 'the curation stages'}; `haic funnel` lists what there is",
                        exit_code=1)
    print_report(result, args.flips)
    folder = f"whatif/{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%SZ')}"
    exports = storage.exports()
    for name, frame in (("funnel", result.funnel), ("flips", result.flips), ("unknown", result.unknown)):
        buffer = io.StringIO()
        frame.to_csv(buffer, index=False)
        exports.put_bytes(f"{folder}/{name}.csv", buffer.getvalue().encode("utf-8"))
    sheets = flip_sheets(result, tables, args.sheets, log=_Log())
    for name, png in sheets.items():
        exports.put_bytes(f"{folder}/sheets/{_safe(name)}.png", png)
    print(f"\nWritten: {exports.uri}/{folder}/ (funnel.csv, flips.csv, unknown.csv, {len(sheets)} contact sheets)")
    return 0


def print_report(result, flips_per_stage: int) -> None:
    print("Re-decided with:")
    for stage in result.plan.stages:
        print(f"  {stage}: " + ", ".join(f"{k}={v}" for k, v in result.plan.settings[stage].items()))
    for assignment, why in result.plan.not_redecided:
        print(f"  not re-decided: {assignment}: {why}")
    print("\nFunnel before -> after:")
    print_frame(result.funnel)
    flips = result.flips
    print(f"\nFlips: {len(flips)}" + (" (none)" if flips.empty else ""))
    if not flips.empty:
        shown = flips if flips_per_stage < 0 else flips.groupby("stage", sort=False).head(flips_per_stage)
        print_frame(shown[["stage", "item_id", "old_verdict", "new_verdict", "new_code", "metric", "value",
                           "new_threshold", "old_metric", "old_value", "old_threshold"]].rename(
            columns={"new_code": "code", "new_threshold": "threshold"}))
        if len(shown) < len(flips):
            print(f"  ... {len(flips) - len(shown)} more in flips.csv")
    if not result.unknown.empty:
        print("\nCannot re-decide (nothing stored settles the verdict):")
        print_frame(result.unknown)


def _safe(name: str) -> str:
    from haic_core.haic_train.export import clip_file_name

    return clip_file_name(name, extension="")


class _Log:
    def warning(self, message: str) -> None:
        print(f"  {message}")

