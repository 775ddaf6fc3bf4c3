"""A stage's decisions as ledger rows, and as the counts, reasons and preview the UI shows."""

from __future__ import annotations

import json
from typing import Any, Mapping, Sequence

import pandas as pd
from dagster import MetadataValue, TableColumn, TableRecord, TableSchema

from haic_core.decisions import Decision
from haic_core.ledger import config_hash, ledger_rows, verdict_summary
from haic_resources.storage.warehouse import LEDGER, LEDGER_COUNTS, ledger_counts


def ledger_table(decisions: Sequence[Decision], *, stage: str, partition: str, config: Mapping[str, Any],
                 code_version: str, run_id: str) -> pd.DataFrame:
    return ledger_rows(decisions, stage=stage, partition=partition, config_hash=config_hash(dict(config)),
                       code_version=code_version, run_id=run_id)


def write_ledger(tables, stage: str, partition: str, rows: pd.DataFrame) -> None:
    """A partition's ledger rows of one stage, and beside them their counts (the funnel sums those,
    so no step re-reads the whole ledger). Both files replace the partition's previous ones."""
    tables.write(f"{LEDGER}/{stage}", partition, rows)
    tables.write(f"{LEDGER_COUNTS}/{stage}", partition, ledger_counts(rows))


def decision_metadata(decisions: Sequence[Decision], config: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    """(materialization metadata, one log line) for a partition's decisions."""
    summary = verdict_summary(decisions)
    counts = summary["by_verdict"]
    line = f"{counts['kept']} kept, {counts['dropped']} dropped, {counts['error']} error"
    if summary["by_reason"]:
        line += f"; top reasons: {list(summary['by_reason'].items())[:3]}"
    metadata = {
        "items": len(decisions),
        "kept": counts["kept"],
        "dropped": counts["dropped"],
        "errors": counts["error"],
        "yield_pct": round(100.0 * counts["kept"] / len(decisions), 2) if decisions else 0.0,
        "dropped_by_reason": MetadataValue.md(_reasons_md(summary["by_reason"])),
        "config_hash": config_hash(dict(config)),
        "config": MetadataValue.json(json.loads(json.dumps(dict(config), default=str))),
    }
    return metadata, line


def table_metadata(frame: pd.DataFrame) -> dict[str, Any]:
    """Dagster's own keys, which the catalog shows without custom code: row count and column schema."""
    schema = TableSchema(columns=[TableColumn(name=str(name), type=str(dtype)) for name, dtype in frame.dtypes.items()])
    return {"rows": len(frame), "dagster/row_count": len(frame), "dagster/column_schema": MetadataValue.table_schema(schema)}


def preview_table(frame: pd.DataFrame, columns: Sequence[str] | None = None, rows: int = 10) -> MetadataValue:
    """The first rows as a Dagster table, for the asset's page in the UI."""
    head = (frame[list(columns)] if columns else frame).head(rows)
    schema = TableSchema(columns=[TableColumn(name=str(c), type="string") for c in head.columns])
    records = [TableRecord({str(c): _cell(v) for c, v in zip(head.columns, record)})
               for record in head.itertuples(index=False)]
    return MetadataValue.table(records=records, schema=schema)


def _cell(value: Any) -> str:
    text = f"{value:.4g}" if isinstance(value, float) else str(value)
    text = text.replace("\n", " ")
    return text if len(text) <= 200 else text[:197] + "…"


def _reasons_md(by_reason: dict[str, int]) -> str:
    if not by_reason:
        return "_nothing dropped_"
    lines = ["| verdict: reason | items |", "|---|---|"]
    lines += [f"| {reason.replace('|', '/')} | {n} |" for reason, n in by_reason.items()]
    return "\n".join(lines)
