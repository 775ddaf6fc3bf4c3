"""raw_metadata: one shard file -> the normalized metadata table (bad rows recorded, not fatal)."""


import pandas as pd
from dagster import AssetExecutionContext, Config, Failure, Output, asset

from haic_core.decisions import error, kept
from haic_core.accumulation.metadata_sources import normalize_metadata, read_shard_file
from haic_resources.storage.landing import fetch_shard, shard_of_partition, source_spec
from haic_resources.storage.resource import StorageResource
from haic_resources.storage.warehouse import WarehouseResource
from haic_assets.platform.ledger import preview, record_decisions
from haic_assets.platform.partition_runs import BACKFILL_POLICY, each_partition
from haic_assets.platform.partitions import source_shards
from haic_assets.platform.settings import stage_code_version

STAGE = "raw_metadata"


class RawMetadataConfig(Config):
    """Ingestion has no thresholds; adapters and column mappings come from landing/<source>/source.yaml."""


@asset(
    partitions_def=source_shards,
    io_manager_key="tables",
    group_name="accumulation",
    code_version=stage_code_version(STAGE),
    description="One metadata shard of one source, normalized: video_id = '<source>:<native id>', "
                "description, uri, width, height, duration_s, fps, the rest as JSON.",
    backfill_policy=BACKFILL_POLICY,
)
def raw_metadata(context: AssetExecutionContext, config: RawMetadataConfig, storage: StorageResource,
                 warehouse: WarehouseResource) -> Output:
    return each_partition(context, _raw_metadata, inputs=(), config=config, storage=storage, warehouse=warehouse)


def _raw_metadata(context: AssetExecutionContext, config: RawMetadataConfig, storage: StorageResource,
                 warehouse: WarehouseResource) -> Output[pd.DataFrame]:
    shard = shard_of_partition(context.partition_key)
    landing = storage.landing()
    spec = source_spec(landing, shard.source, storage.allowed_roots())
    try:
        path = fetch_shard(landing, shard, storage.cache_dir("shards"))
        table, decisions = normalize_metadata(read_shard_file(path), spec, shard.file_name)
    except (ValueError, FileNotFoundError) as exc:
        # A shard that cannot be read at all is the partition's own failure: record it, then fail.
        shard_error = error(f"shard:{context.partition_key}", str(exc), item_kind="shard")
        record_decisions(context, STAGE, [shard_error], config, storage, warehouse)
        raise Failure(description=f"shard {shard.key}: {exc}") from exc
    decisions += [kept(v, "parsed", item_kind="video") for v in table["video_id"]]
    metadata = record_decisions(context, STAGE, decisions, config, storage, warehouse)
    metadata.update(rows=len(table), source_kind=spec.kind, preview=preview(
        table, ["video_id", "description", "uri", "width", "height", "duration_s"]))
    return Output(table, metadata=metadata)
