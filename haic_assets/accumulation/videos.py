"""videos: fetch each video that passed the metadata filter, probe it, settle deferred resolutions."""

import pandas as pd
from dagster import Config
from pydantic import Field

from haic_core.decisions import dropped, error
from haic_core.accumulation.metadata_filter import ResolutionRule, probed_resolution_decision
from haic_resources.video import media_fetch
from haic_resources.video.acquire import AcquireTask, acquire_and_probe
from haic_resources.video.isolation import run_isolated
from haic_assets.accumulation.raw_metadata import RAW_METADATA_COLUMNS
from haic_platform.staged_media import DEFAULT_CACHE_MAX_BYTES, release_sources
from haic_platform.stage import StageContext, StageResult, partitioned_stage


class VideoStageConfig(Config):
    min_short_side_px: int = Field(default=240, ge=0, description="the metadata filter's resolution rule, applied to "
                                                            "probed sizes (setting shared with metadata_filtered)")
    min_long_side_px: int = Field(default=320, ge=0)
    max_duration_s: float = Field(
        default=3600.0, gt=0.0, description="longest video accepted, in seconds: checked before the fetch on the metadata's "
                                    "duration where it gives one, and again on the probed duration (longer ones are "
                                    "dropped with their duration): scene detection and pose decode every frame. The "
                                    "paper gives no value; an hour keeps WebVid (<= 60 s) and most YouTube uploads")
    workers: int = Field(default=2, ge=1, description="videos fetched and probed at once")
    timeout_s: float = Field(default=900.0, gt=0.0, description="hard limit for fetching + probing one video (the child is killed)")
    max_bytes: int = Field(default=media_fetch.DEFAULT_MAX_BYTES, gt=0)
    connect_timeout_s: float = Field(default=media_fetch.DEFAULT_CONNECT_TIMEOUT_S, gt=0.0)
    read_timeout_s: float = Field(default=media_fetch.DEFAULT_READ_TIMEOUT_S, gt=0.0)
    retries: int = Field(default=media_fetch.DEFAULT_RETRIES, ge=0)
    cache_max_bytes: int = Field(
        default=DEFAULT_CACHE_MAX_BYTES, gt=0, description="bound of the local cache where remote videos are staged while "
                                                     "a partition's decode steps need them (least recently used "
                                                     "evicted; an evicted video is fetched again when needed). Local "
                                                     "and mounted sources are read in place and never copied")
    mirror_sources: bool = Field(default=False, description="keep staged remote videos (and copy them to an S3 media "
                                                            "store) instead of releasing them after the decode steps")


VIDEO_COLUMNS = {
    "video_id": RAW_METADATA_COLUMNS["video_id"],
    "description": RAW_METADATA_COLUMNS["description"],
    "source_uri": "the source's uri, credentials removed",
    "media_key": "key of the video in the media store (only with mirror_sources)",
    "local_path": "the file the decode steps read: the source itself, or its staged copy in the media cache",
    "sha256": "sha256 of the video's bytes",
    "size_bytes": "size of the video file",
    "container": "container format as PyAV reads it",
    "codec": "video codec",
    "width": "width in pixels, as decoded (rotation applied)",
    "height": "height in pixels, as decoded (rotation applied)",
    "fps": "frame rate of the video stream",
    "is_vfr": "variable frame rate (packet timestamps step unevenly)",
    "duration_s": "duration in seconds, probed",
    "frame_count": "number of frames (counted, or estimated from duration and rate)",
    "frame_count_exact": "frame_count was counted, not estimated",
    "has_audio": "the file has an audio stream",
    "rotation_deg": "display rotation, counter-clockwise (portrait phone video: 90 or 270)",
    "fetched": "downloaded by this run (false: read in place or already staged)",
    "in_place": "a local or mounted source read where it is, never copied",
    "uri": RAW_METADATA_COLUMNS["uri"],
    "window_start_s": "start of the section the scene split keeps to (empty: the whole video)",
    "window_end_s": "end of the section the scene split keeps to (empty: the whole video)",
}


@partitioned_stage("videos", VideoStageConfig, ins=("metadata_filtered",), kind="decode", columns=VIDEO_COLUMNS,
                   column_docs=VIDEO_COLUMNS,
                   settings_from={"min_short_side_px": "metadata_filtered", "min_long_side_px": "metadata_filtered"})
def videos(stage: StageContext, config: VideoStageConfig, metadata_filtered: pd.DataFrame) -> StageResult:
    """Every video that passed the metadata filter, read in place (local path, file://) or staged in the bounded
    media cache (s3://, http(s)://; by content), and probed with PyAV under a hard time limit."""
    storage = stage.storage
    decisions, metadata_filtered = _too_long_by_metadata(metadata_filtered, config.max_duration_s)
    tasks = [AcquireTask(video_id=r.video_id, uri=r.uri, media_root=str(storage.layout.media),
                         allowed_roots=storage.allowed_roots(), s3=storage.s3_settings(),
                         max_bytes=config.max_bytes, connect_timeout_s=config.connect_timeout_s,
                         read_timeout_s=config.read_timeout_s, retries=config.retries,
                         policy=storage.fetch_policy(), cache_max_bytes=config.cache_max_bytes)
             for r in metadata_filtered.itertuples(index=False)]
    stage.log.info(f"fetching and probing {len(tasks)} videos, {config.workers} at a time")
    results = run_isolated(acquire_and_probe, tasks, workers=config.workers, timeout_s=config.timeout_s,
                           progress=stage.progress("fetch and probe"))
    rule = ResolutionRule(config.min_short_side_px, config.min_long_side_px)
    descriptions = dict(zip(metadata_filtered["video_id"], metadata_filtered["description"]))
    windows = _windows(metadata_filtered)
    media_store = storage.media()
    rows, not_needed = [], []
    for result in results:
        video_id = result.item.video_id
        if not result.ok:
            if not isinstance(result.exception, media_fetch.FetchError):
                # Fetched but no usable video (probe error, timeout, crash): it leaves the store.
                media_fetch.forget_media(result.item.uri, result.item.media_root)
            decisions.append(error(video_id, result.error, detail={"elapsed_s": round(result.elapsed_s, 2)}))
            continue
        media, probe = result.value["media"], result.value["probe"]
        decision = probed_resolution_decision(video_id, probe, rule)
        # The scene split keeps to the row's window, unless only that section was downloaded.
        window = None if media["section"] else windows.get(video_id)
        if video_id in windows:
            decision.detail.update(window_s=list(windows[video_id]), section_downloaded=media["section"])
        if decision.verdict == "kept" and probe["duration_s"] > config.max_duration_s:
            decision = dropped(video_id, f"video {probe['duration_s']:.2f} s > {config.max_duration_s:g} s",
                               metric="duration_s", value=float(probe["duration_s"]),
                               threshold=config.max_duration_s, detail=decision.detail)
        decisions.append(decision)
        if decision.verdict != "kept":
            not_needed.append(media["local_path"])
            continue
        media_key = None
        if config.mirror_sources and not media["in_place"]:
            media_key = f"videos/{media['local_path'].rsplit('/', 1)[-1]}"
            if storage.media_uri and media_store.size(media_key) != media["size_bytes"]:
                media_store.put_file(media_key, media["local_path"])
        rows.append({"video_id": video_id, "description": descriptions[video_id], "source_uri": media["source_uri"],
                     "media_key": media_key, "local_path": media["local_path"], "sha256": media["sha256"],
                     "fetched": media["fetched"], "in_place": media["in_place"], "uri": result.item.uri,
                     "window_start_s": window[0] if window else None, "window_end_s": window[1] if window else None,
                     **{k: probe[k] for k in VIDEO_COLUMNS if k in probe}})
    release_sources(stage, not_needed, config.mirror_sources)
    table = pd.DataFrame(rows, columns=list(VIDEO_COLUMNS))
    return StageResult(table, decisions,
                       metadata={"fetched_now": int(table["fetched"].sum()),
                                 "bytes": int(table["size_bytes"].sum()) if len(table) else 0},
                       preview=["video_id", "codec", "width", "height", "fps", "is_vfr", "duration_s"])


def _too_long_by_metadata(rows: pd.DataFrame, max_duration_s: float) -> tuple[list, pd.DataFrame]:
    """Drops for the rows whose metadata already says they are too long (never fetched), and the other rows."""
    duration = pd.to_numeric(rows["duration_s"], errors="coerce") if "duration_s" in rows else None
    if duration is None:
        return [], rows
    too_long = (duration > max_duration_s).fillna(False).to_numpy(dtype=bool)
    decisions = [dropped(r.video_id, f"video {d:.2f} s > {max_duration_s:g} s (by its metadata; not fetched)",
                         metric="duration_s", value=float(d), threshold=max_duration_s, detail={"uri_not_fetched": True})
                 for r, d in zip(rows[too_long].itertuples(index=False), duration[too_long])]
    return decisions, rows[~too_long]


def _windows(rows: pd.DataFrame) -> dict[str, tuple[float, float]]:
    """video_id -> the row's [start, end] window in seconds, for rows that give one (Omega-style sources)."""
    if "start_s" not in rows or "end_s" not in rows:
        return {}
    given = rows.dropna(subset=["start_s", "end_s"])
    return {r.video_id: (float(r.start_s), float(r.end_s)) for r in given.itertuples(index=False)}
