"""threshold_whatif: `haic whatif` as an asset the UI runs with the settings as its config.

Re-decides every stored item with the new thresholds (no decoding; haic_core.whatif_engine); the
table is the items that flip, the metadata the funnel before and after, the items nothing stored
settles (with why), and contact sheets of the flips nearest the new threshold.
"""

from dagster import Config, MetadataValue
from pydantic import Field

from haic_core.whatif import parse_assignments
from haic_platform.ledger import preview_table
from haic_platform.settings import load_settings
from haic_platform.stage import StageContext, StageFailure, StageResult, partitioned_stage
from haic_platform.whatif import flip_sheets, run_whatif

FLIP_COLUMNS = {
    "stage": "the stage whose decision flips", "partition": "the item's partition", "source": "the item's source",
    "item_id": "the item (video, clip, caption)", "parent_id": "the item it came from (a clip's video)",
    "item_kind": "video, clip, caption, ...",
    "old_verdict": "the ledger's verdict", "new_verdict": "the verdict under the new thresholds",
    "old_code": "the ledger's reason code", "new_code": "the new reason code",
    "old_metric": "the measured value's name in the ledger", "old_value": "the stored measured value",
    "old_threshold": "the threshold the ledger's decision used",
    "metric": "the measured value the new decision reads", "value": "its stored value",
    "new_threshold": "the new threshold",
    "margin": "distance of the value from the new threshold, relative to it (small: nearly undecided)",
}
from haic_resources.storage.warehouse import in_memory_warehouse


class ThresholdWhatIfConfig(Config):
    settings: list[str] = Field(default=[], description="new thresholds as STAGE.SETTING=VALUE, named as in "
                                                        "settings.yaml, e.g. action_filtered.motion_l1_min=0.12")
    source: str = Field(default="", description="only this source's items (empty: all)")
    partition: str = Field(default="", description="only this partition's items (empty: all)")
    sheets: int = Field(default=2, ge=0, description="contact sheets of this many flips nearest the new threshold, "
                                                     "per stage and direction")


@partitioned_stage("threshold_whatif", ThresholdWhatIfConfig, partitions=None, records_decisions=False,
                   deps=("action_filtered", "caption_judgement"), column_docs=FLIP_COLUMNS)
def threshold_whatif(stage: StageContext, config: ThresholdWhatIfConfig) -> StageResult:
    """What new thresholds would keep and drop, re-decided from the ledger's stored values without decoding:
    the items that flip, the funnel before and after per source and stage, and what cannot be re-decided."""
    assignments = parse_assignments(config.settings)
    if not assignments:
        raise StageFailure("threshold_whatif: give the new thresholds in the config's `settings` "
                           "(STAGE.SETTING=VALUE, e.g. action_filtered.motion_l1_min=0.12)")
    from haic_assets.stages import settings_fields

    tables = stage.storage.tables()
    conn = in_memory_warehouse(tables.local_root(), stage.warehouse.stage_order)
    try:
        result = run_whatif(conn, tables, assignments, load_settings(settings_fields()), config.source or None,
                            config.partition or None)
    except ValueError as exc:
        raise StageFailure(f"threshold_whatif: {exc}") from None
    finally:
        conn.close()
    sheets = flip_sheets(result, tables, config.sheets, log=stage.log)
    stage.log.info(f"what-if {[str(a) for a in assignments]}: {len(result.flips)} flips; "
                   f"{int(result.unknown['items'].sum()) if len(result.unknown) else 0} items not settled")
    return StageResult(result.flips, None, pictures=sheets, preview=["stage", "item_id", "old_verdict", "new_verdict",
                                                                     "metric", "value", "new_threshold"],
                       metadata={"settings": MetadataValue.json([str(a) for a in assignments]),
                                 "redecided_with": MetadataValue.json(json_ready(result.plan.settings)),
                                 "not_redecided": MetadataValue.json(dict(result.plan.not_redecided)),
                                 "flips": len(result.flips),
                                 "funnel_before_after": preview_table(result.funnel, rows=100),
                                 "cannot_redecide": preview_table(result.unknown, rows=50)})


def json_ready(settings) -> dict:
    return {stage: {k: (v if isinstance(v, (int, float, str, bool)) or v is None else str(v))
                    for k, v in values.items()}
            for stage, values in settings.items()}
