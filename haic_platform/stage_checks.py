"""Asset checks on the deciding stages, visible next to their assets in the UI.

On every deciding stage:
- `error_rate_within_limit`: items in error (undecodable media, failed LLM calls, ...) stay under
  `platform.max_error_rate` of the partition's items; above it something systemic is wrong.
- `one_ledger_row_per_item`: the ledger holds exactly one row per decided item, so `haic why` and
  the funnel count every item once.
- `required_columns_present`: the stage's table has the columns it declares (`columns=`).
Where the stage asks for them (`checks=`):
- `yield_within_band` (action_filtered): the whole accumulation's yield, clips kept over the
  shard's raw_metadata rows, inside `platform.yield_band_pct` (the paper's 0.31-1.3 %). WARN:
  a small shard's yield varies far more than a whole source's.
- `caption_format_pass_rate` (caption_judgement): the share of judged captions kept reaches
  `platform.min_caption_format_pass_rate`.

The stage factory evaluates them from the decisions and tables it records (no second read).
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Sequence

from dagster import AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, AssetKey, MetadataValue

from haic_core.decisions import Decision

ERROR_RATE = "error_rate_within_limit"
ONE_ROW_PER_ITEM = "one_ledger_row_per_item"
REQUIRED_COLUMNS = "required_columns_present"
YIELD_BAND = "yield_within_band"
CAPTION_PASS_RATE = "caption_format_pass_rate"
OPTIONAL_CHECKS = {
    YIELD_BAND: "clips kept over the shard's raw_metadata rows stay inside platform.yield_band_pct "
                "(the paper: 0.31-1.3 % for the whole accumulation)",
    CAPTION_PASS_RATE: "the share of captions in the standardized format reaches "
                       "platform.min_caption_format_pass_rate",
}


def stage_check_specs(asset: str, columns: Sequence[str] = (), optional: Sequence[str] = ()) -> list[AssetCheckSpec]:
    key = AssetKey(asset)
    specs = [AssetCheckSpec(ERROR_RATE, asset=key, description="items in error stay under platform.max_error_rate"),
             AssetCheckSpec(ONE_ROW_PER_ITEM, asset=key, description="the ledger has exactly one row per decided item")]
    if columns:
        specs.append(AssetCheckSpec(REQUIRED_COLUMNS, asset=key, description=f"the table has {', '.join(columns)}"))
    specs += [AssetCheckSpec(name, asset=key, description=OPTIONAL_CHECKS[name]) for name in optional]
    return specs


def decision_facts(decisions: Sequence[Decision], columns: Sequence[str] = (), raw_rows: int | None = None
                   ) -> dict[str, Any]:
    """What the checks need of one partition's decisions and table."""
    ids = Counter(d.item_id for d in decisions)
    facts: dict[str, Any] = {"items": len(decisions), "errors": sum(d.verdict == "error" for d in decisions),
                             "kept": sum(d.verdict == "kept" for d in decisions),
                             "dropped": sum(d.verdict == "dropped" for d in decisions),
                             "repeated_items": sum(n - 1 for n in ids.values() if n > 1),
                             "repeated_ids": sorted(item for item, n in ids.items() if n > 1),
                             "columns": list(columns)}
    if raw_rows is not None:
        facts["raw_rows"] = raw_rows
    return facts


def check_results(asset: str, facts_by_partition: dict[str, dict[str, Any]], platform,
                  selected: set[str], required_columns: Sequence[str] = ()) -> list[AssetCheckResult]:
    def total(name: str) -> int:
        return sum(f.get(name, 0) for f in facts_by_partition.values())

    items, errors, repeated, kept = total("items"), total("errors"), total("repeated_items"), total("kept")
    rate = errors / items if items else 0.0
    key = AssetKey(asset)
    results = []
    if ERROR_RATE in selected:
        results.append(AssetCheckResult(
            asset_key=key, check_name=ERROR_RATE, passed=rate <= platform.max_error_rate,
            severity=AssetCheckSeverity.WARN,
            metadata={"error_rate": round(rate, 4), "limit": platform.max_error_rate, "errors": errors, "items": items,
                      "by_partition": MetadataValue.json({k: {n: f[n] for n in ("items", "errors")}
                                                          for k, f in facts_by_partition.items()})}))
    if ONE_ROW_PER_ITEM in selected:
        repeated_ids = sorted({i for f in facts_by_partition.values() for i in f.get("repeated_ids", [])})
        results.append(AssetCheckResult(asset_key=key, check_name=ONE_ROW_PER_ITEM, passed=repeated == 0,
                                        metadata={"items": items, "repeated_items": repeated,
                                                  # the first 50 of them, so the check's page says which
                                                  "repeated_ids": ", ".join(repeated_ids[:50]) or "none"}))
    if REQUIRED_COLUMNS in selected:
        missing = sorted({c for f in facts_by_partition.values() for c in required_columns if c not in f["columns"]})
        results.append(AssetCheckResult(asset_key=key, check_name=REQUIRED_COLUMNS, passed=not missing,
                                        metadata={"required": ", ".join(required_columns),
                                                  "missing": ", ".join(missing) or "none"}))
    if YIELD_BAND in selected:
        raw = total("raw_rows")
        low, high = platform.yield_band_pct
        pct = 100.0 * kept / raw if raw else 0.0
        results.append(AssetCheckResult(
            asset_key=key, check_name=YIELD_BAND, passed=bool(raw) and low <= pct <= high,
            severity=AssetCheckSeverity.WARN,
            description=f"kept {kept} of {raw} raw_metadata rows = {pct:.2f} %, band {low}-{high} %",
            metadata={"yield_pct": round(pct, 4), "kept": kept, "raw_metadata_rows": raw, "band_low_pct": low,
                      "band_high_pct": high}))
    if CAPTION_PASS_RATE in selected:
        judged = kept + total("dropped")
        share = kept / judged if judged else 0.0
        results.append(AssetCheckResult(
            asset_key=key, check_name=CAPTION_PASS_RATE, passed=bool(judged) and share >= platform.min_caption_format_pass_rate,
            severity=AssetCheckSeverity.WARN,
            description=f"{kept} of {judged} captions pass = {100 * share:.1f} %, "
                        f"minimum {100 * platform.min_caption_format_pass_rate:.1f} %",
            metadata={"pass_rate": round(share, 4), "passed": kept, "judged": judged,
                      "minimum": platform.min_caption_format_pass_rate}))
    return results
