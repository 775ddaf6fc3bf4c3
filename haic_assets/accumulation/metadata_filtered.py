"""metadata_filtered: resolution and the verb test (spaCy POS tags) on the description."""


import pandas as pd
from dagster import AssetExecutionContext, Config, Output, asset
from pydantic import Field

from haic_core.accumulation.metadata_filter import ResolutionRule, filter_metadata
from haic_resources.text.spacy_nlp import SpacyResource
from haic_resources.storage.resource import StorageResource
from haic_resources.storage.warehouse import WarehouseResource
from haic_assets.platform.ledger import preview, record_decisions
from haic_assets.platform.partition_runs import BACKFILL_POLICY, each_partition
from haic_assets.platform.partitions import source_shards
from haic_assets.platform.settings import setting, stage_code_version

STAGE = "metadata_filtered"


class MetadataFilterConfig(Config):
    min_short_side_px: int = Field(
        default=setting(STAGE, "min_short_side_px", 240),
        description="drop videos whose shorter side is below this (the paper gives no value; "
                    "240 keeps WebVid's 596x336 previews)")
    min_long_side_px: int = Field(default=setting(STAGE, "min_long_side_px", 320),
                                  description="drop videos whose longer side is below this")


@asset(
    partitions_def=source_shards,
    io_manager_key="tables",
    group_name="accumulation",
    code_version=stage_code_version(STAGE, MetadataFilterConfig),
    description="Videos whose resolution is high enough (or unknown: deferred to the probe) and "
                "whose description contains a verb.",
    backfill_policy=BACKFILL_POLICY,
)
def metadata_filtered(context: AssetExecutionContext, config: MetadataFilterConfig, raw_metadata,
                      spacy_nlp: SpacyResource, storage: StorageResource, warehouse: WarehouseResource) -> Output:
    return each_partition(context, _metadata_filtered, inputs=("raw_metadata",), config=config,
                          raw_metadata=raw_metadata, spacy_nlp=spacy_nlp, storage=storage, warehouse=warehouse)


def _metadata_filtered(context: AssetExecutionContext, config: MetadataFilterConfig, raw_metadata: pd.DataFrame,
                      spacy_nlp: SpacyResource, storage: StorageResource,
                      warehouse: WarehouseResource) -> Output[pd.DataFrame]:
    rule = ResolutionRule(config.min_short_side_px, config.min_long_side_px)
    table, decisions = filter_metadata(raw_metadata, spacy_nlp.tagger(), rule, batch_size=spacy_nlp.batch_size)
    metadata = record_decisions(context, STAGE, decisions, config, storage, warehouse)
    metadata.update(rows=len(table), deferred_resolution=int(table["resolution_deferred"].sum()),
                    preview=preview(table, ["video_id", "description", "width", "height", "resolution_deferred"]))
    return Output(table, metadata=metadata)
