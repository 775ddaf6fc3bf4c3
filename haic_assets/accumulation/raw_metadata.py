"""raw_metadata: one shard file -> the normalized metadata table (bad rows recorded, not fatal).

The landing file's version (sha256 of its bytes, or its S3 ETag and size) is recorded on every
ledger row and on the materialization: a file replaced or appended later has another version, so
its partition is stale (`haic recurate`), and when it is read again the items the new version no
longer has are recorded as `superseded`, with the version they came from.
"""

import json
from dataclasses import replace

import pandas as pd
from dagster import Config

from haic_core.accumulation.metadata_sources import normalize_metadata, read_shard_file
from haic_core.decisions import Decision, dropped, error
from haic_resources.storage.landing import fetch_shard, shard_of_partition, source_spec
from haic_platform.stage import StageContext, StageFailure, StageResult, partitioned_stage

LANDING_VERSION = "landing_version"  # ledger detail and materialization metadata
SUPERSEDED = "superseded"
# What each column of the normalized metadata holds (the catalog's column schema; later stages reuse these).
RAW_METADATA_COLUMNS = {
    "video_id": "'<source>:<native id>': the video's id in every table and the ledger",
    "native_id": "the video's id in its source (WebVid videoid, YouTube id, ...)",
    "source": "the source's name (landing/<source>/)",
    "shard": "the metadata file the row came from",
    "description": "the source's text about the video (WebVid's `name`): the verb test reads it",
    "uri": "where the video is: a local path, file://, s3://, http(s):// or a yt-dlp page",
    "width": "width in pixels as the metadata says (empty: unknown, the probe decides)",
    "height": "height in pixels as the metadata says (empty: unknown, the probe decides)",
    "duration_s": "duration in seconds as the metadata says (WebVid: ISO-8601 PT..H..M..S)",
    "fps": "frame rate as the metadata says",
    "start_s": "start of the video's section in seconds (Omega-style rows; empty: the whole video)",
    "end_s": "end of the video's section in seconds (empty: the whole video)",
    "extra": "the row's other columns, as JSON",
}


class RawMetadataConfig(Config):
    """Ingestion has no thresholds; adapters and column mappings come from landing/<source>/source.yaml."""


@partitioned_stage("raw_metadata", RawMetadataConfig, deps=("landing_file",), column_docs=RAW_METADATA_COLUMNS)
def raw_metadata(stage: StageContext, config: RawMetadataConfig) -> StageResult:
    """One metadata shard of one source, normalized: video_id = '<source>:<native id>', description, uri,
    width, height, duration_s, fps, the rest as JSON."""
    # A key that names no valid shard fails here, before any ledger or table path is made of it.
    shard = shard_of_partition(stage.partition_key)
    landing = stage.storage.landing()
    try:
        spec = source_spec(landing, shard.source, stage.storage.allowed_roots())
        path, version = fetch_shard(landing, shard, stage.storage.cache_dir("shards"))
        table, decisions = normalize_metadata(read_shard_file(path), spec, shard.file_name)
    except (ValueError, FileNotFoundError) as exc:
        # A shard that cannot be read at all is the partition's own failure: record it, then fail.
        raise StageFailure(f"shard {shard.key}: {exc}",
                           [error(f"shard:{stage.partition_key}", str(exc), item_kind="shard")]) from exc
    decisions = [replace(d, detail={**d.detail, LANDING_VERSION: version}) for d in decisions]
    previous = stage.storage.tables().read(f"ledger/{stage.stage}", stage.partition_key)
    gone = superseded(previous, {d.item_id for d in decisions}, f"landing/{shard.key}", version)
    if gone:
        stage.log.info(f"raw_metadata [{stage.partition_key}]: {len(gone)} items of an earlier version of "
                       f"landing/{shard.key} are no longer in it (superseded)")
    return StageResult(table, decisions + gone, metadata={"source_kind": spec.kind, LANDING_VERSION: version},
                       preview=["video_id", "description", "uri", "width", "height", "duration_s"])


def superseded(previous: pd.DataFrame | None, current: set[str], where: str, version: str) -> list[Decision]:
    """The items of an earlier version of the shard that this version no longer has: each dropped
    as `superseded`, naming the version it came from and the run that read it (items superseded
    before, and still absent, keep their first such row)."""
    if previous is None or previous.empty:
        return []
    gone = []
    for row in previous[~previous["item_id"].isin(current)].itertuples(index=False):
        detail = json.loads(row.detail) if isinstance(row.detail, str) else {}
        if row.reason_code == SUPERSEDED:
            gone.append(_decision_of(row, detail))
            continue
        was = detail.get(LANDING_VERSION, "an earlier version")
        gone.append(dropped(row.item_id, f"no longer in {where}: the file changed ({was} -> {version})",
                            code=SUPERSEDED, item_kind=row.item_kind,
                            parent_id=None if pd.isna(row.parent_id) else row.parent_id,
                            detail={LANDING_VERSION: was, "superseded_by": version, "previous_verdict": row.verdict,
                                    "previous_reason": row.reason, "previous_run_id": row.run_id}))
    return gone


def _decision_of(row, detail: dict) -> Decision:
    return Decision(item_id=row.item_id, verdict=row.verdict, reason=row.reason, code=row.reason_code,
                    item_kind=row.item_kind, parent_id=None if pd.isna(row.parent_id) else row.parent_id,
                    detail=detail)
