"""`haic diff`: what changed between two runs of a partition, item by item.

    haic diff PARTITION                       its previous run against its last
    haic diff PARTITION --before RUN --after RUN
    haic diff PARTITION --before 3f2a9c       a settings hash or code version (or a prefix of one)

Per stage, the items whose verdict, reason or measured value changed, with both sides, and a
summary table. Exit status 1 when anything changed, 0 when nothing did, 2 on a mistake: a
deployment's CI can gate a model or threshold change on it. Each stage keeps its partition's last
`platform.ledger_history_runs` (2) earlier runs beside the current one; `haic diff PARTITION --runs`
lists them.
"""

from __future__ import annotations

import argparse

from haic_cli.common import EMPTY_LEDGER, UserError, has_ledger, print_frame, warehouse


def register(sub) -> None:
    p = sub.add_parser("diff", help="items whose verdict, reason or value changed between two runs of a partition",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("partition", help="<source>__<shard file name>")
    p.add_argument("--before", metavar="SELECTOR", help="a run id, settings hash or code version (default: the "
                                                        "run before --after)")
    p.add_argument("--after", metavar="SELECTOR", help="the same (default: the last run)")
    p.add_argument("--stage", help="only this stage's changes")
    p.add_argument("--runs", action="store_true", help="list the kept runs of the partition and stop")
    p.add_argument("--limit", type=int, default=50, help="list at most this many items per stage (all: -1)")
    p.set_defaults(func=cmd_diff)


def cmd_diff(args: argparse.Namespace) -> int:
    from haic_core.run_diff import diff, load_partition

    conn = warehouse()
    if not has_ledger(conn):
        print(EMPTY_LEDGER)
        return 2
    if args.runs:
        runs = load_partition(conn, args.partition)
        if runs.empty:
            raise UserError(f"no ledger rows for partition {args.partition!r}")
        print(f"Kept runs of {args.partition} (oldest first):")
        print_frame(runs)
        return 0
    result = diff(conn, args.partition, args.before, args.after)
    summary, changes = result.summary, result.changes
    if args.stage:
        if args.stage not in set(summary["stage"]):
            raise UserError(f"stage {args.stage!r} has no rows in {args.partition}; stages: "
                            + ", ".join(summary["stage"]))
        summary, changes = summary[summary["stage"] == args.stage], changes[changes["stage"] == args.stage]
    print(f"{args.partition}: run {result.before} -> run {result.after}")
    print_frame(summary)
    for stage, rows in changes.groupby("stage", sort=False):
        shown = rows if args.limit < 0 else rows.head(args.limit)
        print(f"\n{stage}: {len(rows)} changed")
        print_frame(shown[["item_id", "change", "verdict_before", "verdict_after", "code_before", "code_after",
                           "metric", "value_before", "value_after", "threshold_before", "threshold_after"]])
        if len(shown) < len(rows):
            print(f"  ... {len(rows) - len(shown)} more (--limit -1 for all)")
    print(f"\n{len(changes)} items changed" if len(changes) else "\nNo item changed.")
    return 1 if len(changes) else 0
