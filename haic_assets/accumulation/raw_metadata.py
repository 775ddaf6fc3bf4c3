"""raw_metadata: one shard file -> the normalized metadata table (bad rows recorded, not fatal)."""

from dagster import Config

from haic_core.decisions import error
from haic_core.accumulation.metadata_sources import normalize_metadata, read_shard_file
from haic_resources.storage.landing import fetch_shard, shard_of_partition, source_spec
from haic_assets.platform.stage import StageContext, StageFailure, StageResult, partitioned_stage


class RawMetadataConfig(Config):
    """Ingestion has no thresholds; adapters and column mappings come from landing/<source>/source.yaml."""


@partitioned_stage("raw_metadata", RawMetadataConfig)
def raw_metadata(stage: StageContext, config: RawMetadataConfig) -> StageResult:
    """One metadata shard of one source, normalized: video_id = '<source>:<native id>', description, uri,
    width, height, duration_s, fps, the rest as JSON."""
    # A key that names no valid shard fails here, before any ledger or table path is made of it.
    shard = shard_of_partition(stage.partition_key)
    landing = stage.storage.landing()
    try:
        spec = source_spec(landing, shard.source, stage.storage.allowed_roots())
        path = fetch_shard(landing, shard, stage.storage.cache_dir("shards"))
        table, decisions = normalize_metadata(read_shard_file(path), spec, shard.file_name)
    except (ValueError, FileNotFoundError) as exc:
        # A shard that cannot be read at all is the partition's own failure: record it, then fail.
        raise StageFailure(f"shard {shard.key}: {exc}",
                           [error(f"shard:{stage.partition_key}", str(exc), item_kind="shard")]) from exc
    return StageResult(table, decisions, metadata={"source_kind": spec.kind},
                       preview=["video_id", "description", "uri", "width", "height", "duration_s"])
