"""videos: fetch each video that passed the metadata filter, probe it, settle deferred resolutions."""

import pandas as pd
from dagster import AssetExecutionContext, Config, Output, asset
from pydantic import Field

from haic_core.decisions import Decision, dropped, error, kept
from haic_core.accumulation.metadata_filter import ResolutionRule
from haic_resources.video import media_fetch
from haic_resources.storage.resource import StorageResource
from haic_resources.video.probe import run_isolated
from haic_resources.video.child_work import AcquireTask, acquire_and_probe
from haic_resources.storage.warehouse import WarehouseResource
from haic_assets.platform.ledger import preview, record_decisions
from haic_assets.platform.deployment import k8s_op_tags
from haic_assets.platform.partition_runs import BACKFILL_POLICY, each_partition
from haic_assets.platform.partitions import source_shards
from haic_assets.platform.settings import setting, stage_code_version

STAGE = "videos"


class VideoStageConfig(Config):
    min_short_side_px: int = Field(default=setting("metadata_filtered", "min_short_side_px", 240),
                                   description="the metadata filter's resolution rule, applied to probed sizes")
    min_long_side_px: int = Field(default=setting("metadata_filtered", "min_long_side_px", 320))
    workers: int = Field(default=setting(STAGE, "workers", 2), description="videos fetched and probed at once")
    timeout_s: float = Field(default=setting(STAGE, "timeout_s", 900.0),
                             description="hard limit for fetching + probing one video (the child is killed)")
    max_bytes: int = Field(default=setting(STAGE, "max_bytes", media_fetch.DEFAULT_MAX_BYTES))
    connect_timeout_s: float = Field(default=setting(STAGE, "connect_timeout_s", media_fetch.DEFAULT_CONNECT_TIMEOUT_S))
    read_timeout_s: float = Field(default=setting(STAGE, "read_timeout_s", media_fetch.DEFAULT_READ_TIMEOUT_S))
    retries: int = Field(default=setting(STAGE, "retries", media_fetch.DEFAULT_RETRIES))


VIDEO_COLUMNS = ["video_id", "description", "source_uri", "media_key", "local_path", "sha256", "size_bytes",
                 "container", "codec", "width", "height", "fps", "is_vfr", "duration_s", "frame_count",
                 "frame_count_exact", "has_audio", "fetched"]


@asset(
    partitions_def=source_shards,
    io_manager_key="tables",
    group_name="accumulation",
    code_version=stage_code_version(STAGE, VideoStageConfig),
    description="Every video that passed the metadata filter, fetched into the media store (local path, "
                "file://, s3://, http(s)://; cached by content) and probed with PyAV under a hard time limit.",
    backfill_policy=BACKFILL_POLICY,
    op_tags=k8s_op_tags("decode"),  # pod resources under the k8s_job_executor; ignored locally
)
def videos(context: AssetExecutionContext, config: VideoStageConfig, metadata_filtered, storage: StorageResource,
           warehouse: WarehouseResource) -> Output:
    return each_partition(context, _videos, inputs=("metadata_filtered",), config=config,
                          metadata_filtered=metadata_filtered, storage=storage, warehouse=warehouse)


def _videos(context: AssetExecutionContext, config: VideoStageConfig, metadata_filtered: pd.DataFrame,
           storage: StorageResource, warehouse: WarehouseResource) -> Output[pd.DataFrame]:
    local_media = storage.layout.media
    tasks = [AcquireTask(video_id=r.video_id, uri=r.uri, media_root=str(local_media),
                         allowed_roots=storage.allowed_roots() + _source_roots(r), s3_endpoint_url=storage.s3.endpoint_url,
                         max_bytes=config.max_bytes, connect_timeout_s=config.connect_timeout_s,
                         read_timeout_s=config.read_timeout_s, retries=config.retries)
             for r in metadata_filtered.itertuples(index=False)]
    context.log.info(f"fetching and probing {len(tasks)} videos, {config.workers} at a time")
    results = run_isolated(acquire_and_probe, tasks, workers=config.workers, timeout_s=config.timeout_s)
    rule = ResolutionRule(config.min_short_side_px, config.min_long_side_px)
    descriptions = dict(zip(metadata_filtered["video_id"], metadata_filtered["description"]))
    media_store = storage.media()
    rows, decisions = [], []
    for result in results:
        video_id = result.item.video_id
        if not result.ok:
            decisions.append(error(video_id, result.error, detail={"elapsed_s": round(result.elapsed_s, 2)}))
            continue
        media, probe = result.value["media"], result.value["probe"]
        decision = _resolution_decision(video_id, probe, rule)
        decisions.append(decision)
        if decision.verdict != "kept":
            continue
        media_key = f"videos/{media['local_path'].rsplit('/', 1)[-1]}"
        if storage.media_uri and media_store.size(media_key) != media["size_bytes"]:
            media_store.put_file(media_key, media["local_path"])
        rows.append({"video_id": video_id, "description": descriptions[video_id], "source_uri": media["source_uri"],
                     "media_key": media_key, "local_path": media["local_path"], "sha256": media["sha256"],
                     "fetched": media["fetched"], **{k: probe[k] for k in VIDEO_COLUMNS if k in probe}})
    table = pd.DataFrame(rows, columns=VIDEO_COLUMNS)
    metadata = record_decisions(context, STAGE, decisions, config, storage, warehouse)
    metadata.update(rows=len(table), fetched_now=int(table["fetched"].sum()),
                    bytes=int(table["size_bytes"].sum()) if len(table) else 0,
                    preview=preview(table, ["video_id", "codec", "width", "height", "fps", "is_vfr", "duration_s"]))
    return Output(table, metadata=metadata)


def _source_roots(row) -> tuple[str, ...]:
    # metadata_filtered rows were already checked against the allowed roots (incl. the source's
    # media_root) at ingestion; a local uri that got this far is inside one of them.
    uri = str(row.uri)
    return () if "://" in uri else (uri.rsplit("/", 1)[0],)


def _resolution_decision(video_id: str, probe: dict, rule: ResolutionRule) -> Decision:
    ok, why = rule.check(probe["width"], probe["height"])
    detail = {k: probe[k] for k in ("codec", "width", "height", "fps", "is_vfr", "duration_s", "frame_count")}
    short = float(min(probe["width"], probe["height"]))
    if not ok:
        return dropped(video_id, why, metric="short_side_px", value=short,
                       threshold=float(rule.min_short_side_px), detail=detail)
    return kept(video_id, f"probed {probe['codec']} {probe['width']}x{probe['height']} "
                          f"{probe['fps']:.2f} fps {probe['duration_s']:.2f} s" + (" (VFR)" if probe["is_vfr"] else ""),
                metric="short_side_px", value=short, threshold=float(rule.min_short_side_px), detail=detail)
