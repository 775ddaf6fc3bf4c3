"""A stage's decisions as ledger rows, and as the counts, reasons and preview the UI shows."""

from __future__ import annotations

import json
from typing import Any, Mapping, Sequence

import pandas as pd
from dagster import MetadataValue, TableColumn, TableRecord, TableSchema

from haic_core.decisions import Decision
from haic_core.ledger import ReasonGroup, config_hash, ledger_rows, verdict_summary
from haic_core.ledger_history import DEFAULT_KEEP, kept_history
from haic_resources.storage.ledger_index import index_files
from haic_resources.storage.warehouse import LEDGER, LEDGER_COUNTS, LEDGER_HISTORY, ledger_counts


def ledger_table(decisions: Sequence[Decision], *, stage: str, partition: str, config: Mapping[str, Any],
                 code_version: str, run_id: str) -> pd.DataFrame:
    return ledger_rows(decisions, stage=stage, partition=partition, config_hash=config_hash(dict(config)),
                       code_version=code_version, run_id=run_id)


def ledger_files(tables, stage: str, partition: str, rows: pd.DataFrame, keep_history: int = DEFAULT_KEEP
                 ) -> dict[tuple[str, str], pd.DataFrame]:
    """The files of a partition's ledger rows of one stage, written together: the rows; beside them
    their counts (the funnel sums those, so no step re-reads the whole ledger); their keys for the
    ledger's index (`haic why` reads only the partitions that hold an item); and the rows they
    replace, joined to the partition's history (at most `keep_history` earlier runs; `haic diff`)."""
    files = {(f"{LEDGER}/{stage}", partition): rows, (f"{LEDGER_COUNTS}/{stage}", partition): ledger_counts(rows),
             **index_files(stage, partition, rows)}
    if keep_history > 0:
        history = kept_history(tables.read(f"{LEDGER_HISTORY}/{stage}", partition),
                               tables.read(f"{LEDGER}/{stage}", partition), keep_history)
        if history is not None:
            files[(f"{LEDGER_HISTORY}/{stage}", partition)] = history
    return files


def write_ledger(tables, stage: str, partition: str, rows: pd.DataFrame, keep_history: int = DEFAULT_KEEP) -> None:
    """Replace a partition's ledger rows of one stage, their counts and its history, together."""
    tables.write_together(f"ledger__{stage}__{partition}", ledger_files(tables, stage, partition, rows, keep_history))


def decision_metadata(decisions: Sequence[Decision], config: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    """(materialization metadata, one log line) for a partition's decisions."""
    summary = verdict_summary(decisions)
    kinds = sorted({d.item_kind for d in decisions})
    metadata: dict[str, Any] = {}
    parts = []
    # Items of different kinds (the split decides on QA and on videos) are counted apart: a sum of
    # QA and videos, or a yield over both, would describe nothing.
    for kind in kinds if len(kinds) > 1 else [None]:
        own = [d for d in decisions if kind is None or d.item_kind == kind]
        counts = verdict_summary(own)["by_verdict"]
        suffix = f"_{kind}" if kind else ""
        metadata.update({f"items{suffix}": len(own), f"kept{suffix}": counts["kept"],
                         f"dropped{suffix}": counts["dropped"], f"errors{suffix}": counts["error"],
                         **({f"pending{suffix}": counts["pending"]} if counts["pending"] else {}),
                         f"yield_pct{suffix}": round(100.0 * counts["kept"] / len(own), 2) if own else 0.0})
        parts.append(f"{counts['kept']} kept, {counts['dropped']} dropped, {counts['error']} error"
                     + (f", {counts['pending']} pending" if counts["pending"] else "")
                     + (f" ({kind})" if kind else ""))
    line = "; ".join(parts)
    if summary["by_reason"]:
        line += "; top reasons: " + "; ".join(group.line() for group in summary["by_reason"][:3])
    metadata.update({
        "dropped_by_reason": reasons_table(summary["by_reason"]),
        "config_hash": config_hash(dict(config)),
        "config": MetadataValue.json(json.loads(json.dumps(dict(config), default=str))),
    })
    return metadata, line


def table_metadata(frame: pd.DataFrame, column_docs: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Dagster's own keys, which the catalog shows without custom code: row count and column schema,
    each column with its type and, where the stage describes it (`column_docs=`), what it holds."""
    docs = column_docs or {}
    schema = TableSchema(columns=[TableColumn(name=str(name), type=str(dtype), description=docs.get(str(name)))
                                  for name, dtype in frame.dtypes.items()])
    return {"rows": len(frame), "dagster/row_count": len(frame), "dagster/column_schema": MetadataValue.table_schema(schema)}


def preview_table(frame: pd.DataFrame, columns: Sequence[str] | None = None, rows: int = 10) -> MetadataValue:
    """The first rows as a Dagster table, for the asset's page in the UI."""
    head = (frame[list(columns)] if columns else frame).head(rows)
    schema = TableSchema(columns=[TableColumn(name=str(c), type="string") for c in head.columns])
    records = [TableRecord({str(c): _cell(v) for c, v in zip(head.columns, record)})
               for record in head.itertuples(index=False)]
    return MetadataValue.table(records=records, schema=schema)


# A preview cell shows a whole caption (40–600 words); only longer text is cut, saying how long it was.
CELL_MAX_CHARS = 4000


def _cell(value: Any) -> str:
    text = f"{value:.4g}" if isinstance(value, float) else str(value)
    text = text.replace("\n", " ")
    return text if len(text) <= CELL_MAX_CHARS else f"{text[:CELL_MAX_CHARS]}… ({len(text)} characters)"


def reasons_table(groups: Sequence[ReasonGroup]) -> MetadataValue:
    """Drops and errors grouped by reason code, each with the item nearest the threshold and its numbers."""
    columns = ["verdict", "reason_code", "items", "nearest_item", "value", "threshold", "reason"]
    schema = TableSchema(columns=[TableColumn(name=c, type="int" if c == "items" else "string") for c in columns])
    records = [TableRecord({"verdict": g.verdict, "reason_code": g.code, "items": g.items, "nearest_item": g.nearest.item_id,
                            "value": _cell(g.nearest.value) if g.nearest.value is not None else "",
                            "threshold": _cell(g.nearest.threshold) if g.nearest.threshold is not None else "",
                            "reason": _cell(g.nearest.reason)})
               for g in groups]
    return MetadataValue.table(records=records, schema=schema)
