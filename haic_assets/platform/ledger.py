"""Write a stage's decisions to the ledger and describe them for the Dagster UI."""

from __future__ import annotations

import json
from typing import Any, Sequence

import pandas as pd
from dagster import AssetExecutionContext, MetadataValue

from haic_core.decisions import Decision
from haic_core.ledger import config_hash, ledger_rows, verdict_summary
from haic_resources.storage.resource import StorageResource
from haic_resources.storage.warehouse import WarehouseResource
from haic_assets.platform.io_manager import UNPARTITIONED
from haic_assets.platform.settings import CODE_VERSIONS


def record_decisions(context: AssetExecutionContext, stage: str, decisions: Sequence[Decision],
                     config: Any, storage: StorageResource, warehouse: WarehouseResource) -> dict[str, Any]:
    """Replace this partition's ledger rows for `stage`; return metadata for the materialization."""
    partition = context.partition_key if context.has_partition_key else UNPARTITIONED
    cfg = config.model_dump() if hasattr(config, "model_dump") else dict(config or {})
    rows = ledger_rows(decisions, stage=stage, partition=partition, config_hash=config_hash(cfg),
                       code_version=CODE_VERSIONS[stage], run_id=context.run.run_id)
    tables = storage.tables()
    tables.write(f"ledger/{stage}", partition, rows)
    warehouse.refresh(tables.local_root())
    summary = verdict_summary(decisions)
    counts = summary["by_verdict"]
    context.log.info(
        f"{stage} [{partition}]: {counts['kept']} kept, {counts['dropped']} dropped, {counts['error']} error"
        + (f"; top reasons: {list(summary['by_reason'].items())[:3]}" if summary["by_reason"] else "")
    )
    return {
        "items": len(decisions),
        "kept": counts["kept"],
        "dropped": counts["dropped"],
        "errors": counts["error"],
        "yield_pct": round(100.0 * counts["kept"] / len(decisions), 2) if decisions else 0.0,
        "dropped_by_reason": MetadataValue.md(_reasons_md(summary["by_reason"])),
        "config_hash": rows["config_hash"].iloc[0] if len(rows) else config_hash(cfg),
        "config": MetadataValue.json(json.loads(json.dumps(cfg, default=str))),
    }


def preview(frame: pd.DataFrame, columns: Sequence[str] | None = None, rows: int = 10) -> MetadataValue:
    """A small markdown table of the first rows, for the asset's page in the UI."""
    if frame.empty:
        return MetadataValue.md("_(no rows)_")
    shown = frame[list(columns)] if columns else frame
    head = shown.head(rows)
    lines = ["| " + " | ".join(map(str, head.columns)) + " |", "|" + "---|" * len(head.columns)]
    for record in head.itertuples(index=False):
        cells = [_cell(v) for v in record]
        lines.append("| " + " | ".join(cells) + " |")
    return MetadataValue.md("\n".join(lines))


def _cell(value: Any) -> str:
    if isinstance(value, float):
        text = f"{value:.4g}"
    else:
        text = str(value)
    text = text.replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= 60 else text[:57] + "…"


def _reasons_md(by_reason: dict[str, int]) -> str:
    if not by_reason:
        return "_nothing dropped_"
    lines = ["| verdict: reason | items |", "|---|---|"]
    lines += [f"| {reason.replace('|', '/')} | {n} |" for reason, n in by_reason.items()]
    return "\n".join(lines)
