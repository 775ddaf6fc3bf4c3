"""`haic funnel` and `haic why`: lineage questions answered from the decision ledger.

    haic funnel [--source S]    kept / dropped / error per source, stage and kind of item
    haic why ITEM_ID [-v]       an item's trail through the stages, with reasons, values, thresholds
"""

from __future__ import annotations

import argparse
import math

from haic_cli.common import EMPTY_LEDGER, home_tables, print_rows
from haic_core.sql_files import load_sql, quote_literal
from haic_resources.storage.home import haic_home


def register(sub) -> None:
    p = sub.add_parser("funnel", help="kept/dropped/error per stage and source",
                       description="Kept, dropped and error counts per source, stage and kind of item, from "
                                   "the ledger: a stage that decides on videos and on QA (haicbench_split) has "
                                   "a row for each, never their sum.")
    p.add_argument("--source", help="only this source")
    p.set_defaults(func=cmd_funnel)
    p = sub.add_parser("why", help="an item's trail through the stages",
                       description="Every stage's decision on an item and its children (clips of a video), "
                                   "with reasons, measured values and thresholds.")
    p.add_argument("item_id", help="a video id like webvid:1001, or a clip id")
    p.add_argument("-v", "--verbose", action="store_true", help="also config hash, code version, run id")
    p.set_defaults(func=cmd_why)


def cmd_funnel(args: argparse.Namespace) -> int:
    from haic_core.pipeline_order import PIPELINE_STAGES
    from haic_resources.storage.warehouse import funnel_rows

    found = funnel_rows(home_tables().local_root(), PIPELINE_STAGES)
    if found is None:
        print(EMPTY_LEDGER)
        return 1
    columns, everything = found
    rows = everything
    pending = columns.index("pending")
    if not any(row[pending] for row in rows):  # items waiting in LLM batch jobs: a column only while there are some
        columns = columns[:pending] + columns[pending + 1:]
        rows = [row[:pending] + row[pending + 1:] for row in rows]
    if args.source:
        source = columns.index("source")
        rows = [row for row in rows if row[source] == args.source]
        if not rows:
            known = ", ".join(sorted({str(row[source]) for row in everything}))
            print(f"No ledger rows for source {args.source!r}; sources with rows: {known}.")
            return 1
    print(f"Funnel (HAIC_HOME={haic_home().root})")
    print_rows(columns, rows)
    return 0


def cmd_why(args: argparse.Namespace) -> int:
    from haic_core.pipeline_order import PIPELINE_STAGES
    from haic_resources.storage.ledger_index import ensure_built
    from haic_resources.storage.ledger_trail import indexed_trail

    tables = home_tables()
    root = tables.local_root()
    if not (root / "ledger").is_dir():
        print(EMPTY_LEDGER)
        return 1
    ensure_built(tables, root)  # a home whose ledger was written before the index: indexed once
    trail, conn = indexed_trail(root, args.item_id, PIPELINE_STAGES)
    if not trail:
        print(f"No ledger rows for {args.item_id!r}. Ids look like 'webvid:1001' (video) or a clip id; "
              "`haic funnel` lists the stages.")
        return 1
    sheets = {}
    sheet_files = [root / "contact_sheets" / f"{stage}__{partition}.parquet"
                   for stage, partition in {(row.stage, row.partition) for row in trail}]
    sheet_files = [str(f) for f in sheet_files if f.is_file()]
    if sheet_files:
        conn.execute("CREATE VIEW contact_sheets AS SELECT * FROM read_parquet(["
                     + ", ".join(quote_literal(f) for f in sheet_files) + "], union_by_name = true)")
        items = sorted({row.item_id for row in trail})
        for stage, item_id, uri in conn.execute(load_sql("contact_sheets_of"), [items]).fetchall():
            sheets[(stage, item_id)] = uri
    print(f"Trail of {args.item_id}:")
    for row in trail:
        evidence = ""
        if row.metric is not None and not _missing(row.value):
            evidence = f"  [{row.metric}={row.value:.6g}"
            evidence += f", threshold {row.threshold:.6g}]" if not _missing(row.threshold) else "]"
        indent = "  " * max(0, int(row.depth) + 2)
        code = "" if _missing(row.reason_code) else f"{row.reason_code}: "
        print(f"{indent}{row.stage:<18} {row.item_kind:<6} {row.item_id:<40} {row.verdict.upper():<8} "
              f"{code}{row.reason}{evidence}")
        if (row.stage, row.item_id) in sheets:
            print(f"{indent}    contact sheet: {sheets[(row.stage, row.item_id)]}")
        if args.verbose:
            print(f"{indent}    partition={row.partition} config={row.config_hash} code={row.code_version} "
                  f"run={row.run_id} at={row.decided_at}")
    return 0


def _missing(value) -> bool:
    """NULL in the ledger (None), or a NaN a frame wrote as a value."""
    return value is None or (isinstance(value, float) and math.isnan(value))
