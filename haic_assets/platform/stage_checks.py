"""Asset checks that every deciding stage carries, visible next to its asset in the UI.

- `error_rate_within_limit`: items in error (undecodable media, failed LLM calls, ...) stay under
  `platform.max_error_rate` of the partition's items; above it something systemic is wrong.
- `one_ledger_row_per_item`: the ledger holds exactly one row per decided item, so `haic why` and
  the funnel count every item once.

The stage factory evaluates them from the decisions it records (no second read of any table).
"""

from __future__ import annotations

from collections import Counter
from typing import Sequence

from dagster import AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, AssetKey, MetadataValue

from haic_core.decisions import Decision

ERROR_RATE = "error_rate_within_limit"
ONE_ROW_PER_ITEM = "one_ledger_row_per_item"


def stage_check_specs(asset: str) -> list[AssetCheckSpec]:
    key = AssetKey(asset)
    return [AssetCheckSpec(ERROR_RATE, asset=key, description="items in error stay under platform.max_error_rate"),
            AssetCheckSpec(ONE_ROW_PER_ITEM, asset=key, description="the ledger has exactly one row per decided item")]


def decision_facts(decisions: Sequence[Decision]) -> dict[str, int]:
    """What the checks need of one partition's decisions."""
    ids = Counter(d.item_id for d in decisions)
    return {"items": len(decisions), "errors": sum(d.verdict == "error" for d in decisions),
            "repeated_items": sum(n - 1 for n in ids.values() if n > 1)}


def check_results(asset: str, facts_by_partition: dict[str, dict[str, int]], max_error_rate: float,
                  selected: set[str]) -> list[AssetCheckResult]:
    items = sum(f["items"] for f in facts_by_partition.values())
    errors = sum(f["errors"] for f in facts_by_partition.values())
    repeated = sum(f["repeated_items"] for f in facts_by_partition.values())
    rate = errors / items if items else 0.0
    results = []
    if ERROR_RATE in selected:
        results.append(AssetCheckResult(
            asset_key=AssetKey(asset), check_name=ERROR_RATE, passed=rate <= max_error_rate,
            severity=AssetCheckSeverity.WARN,
            metadata={"error_rate": round(rate, 4), "limit": max_error_rate, "errors": errors, "items": items,
                      "by_partition": MetadataValue.json(facts_by_partition)}))
    if ONE_ROW_PER_ITEM in selected:
        results.append(AssetCheckResult(asset_key=AssetKey(asset), check_name=ONE_ROW_PER_ITEM, passed=repeated == 0,
                                        metadata={"items": items, "repeated_items": repeated}))
    return results
