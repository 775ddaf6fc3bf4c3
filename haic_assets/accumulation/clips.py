"""clips: PySceneDetect scene cuts per video; each scene of 5–20 s is a candidate clip.

The clips table (video id, clip id, window in seconds and frames, fps) is the artifact: no file
is cut here. Later stages read frames by window; only the clips that survive every filter are
cut to files, by action_filtered.
"""

import pandas as pd
from dagster import Config
from pydantic import Field

from haic_core.decisions import error
from haic_core.accumulation.scenes import MAX_CLIP_LENGTH_S, MIN_CLIP_LENGTH_S
from haic_resources.video.isolation import run_isolated
from haic_resources.video import gpu_split
from haic_platform.staged_media import DEFAULT_CACHE_MAX_BYTES, SHARED_SETTINGS, release_sources, restage
from haic_resources.video.scene_detect import (DEFAULT_MIN_SCENE_LEN_FRAMES, SplitTask, decode_threads_for,
                                               pixels_to_decode, split_into_clips)
from haic_assets.accumulation.videos import VIDEO_COLUMNS
from haic_platform.settings import not_below
from haic_platform.stage import StageContext, StageResult, partitioned_stage


class SceneSplitConfig(Config):
    min_length_s: float = Field(default=MIN_CLIP_LENGTH_S, ge=0.0, description="paper: keep clips of at least 5 s")
    max_length_s: float = Field(default=MAX_CLIP_LENGTH_S, gt=0.0, validate_default=True, description="paper: keep clips of at most 20 s")
    detector: str = Field(default="content", description="PySceneDetect detector: content (default), adaptive or threshold")
    threshold: float | None = Field(default=None, ge=0.0, description="detector threshold; empty = PySceneDetect's default")
    min_scene_len: int = Field(default=DEFAULT_MIN_SCENE_LEN_FRAMES, ge=0, description="frames")
    frame_skip: int = Field(default=0, ge=0, description="analyse 1 frame in N+1")
    downscale: int | None = Field(default=None, ge=1, description="decode at 1/N size; empty = PySceneDetect's auto (~256 px wide)")
    workers: int = Field(default=2, ge=1)
    decode_threads: int | None = Field(
        default=None, ge=0, description="FFmpeg decoder threads per video (0 = FFmpeg's choice); empty = the cores shared "
                                  "among the videos in flight, 1 each once every core has a video")
    timeout_s: float = Field(default=600.0, gt=0.0, description="hard limit per video")
    max_clips_per_video: int = Field(
        default=10, ge=1, description="most clips taken from one video (the earliest in-length scenes; later ones are "
                                      "dropped with their rank): a long video must neither flood the set nor the "
                                      "presence and pose work. The paper gives no value; 10 is above what "
                                      "WebVid-length videos yield")
    cache_max_bytes: int = Field(default=DEFAULT_CACHE_MAX_BYTES, gt=0, description="setting shared with videos")
    mirror_sources: bool = Field(default=False, description="setting shared with videos")

    length_range = not_below("min_length_s", "max_length_s")


CLIP_COLUMNS = {
    "clip_id": "'<video_id>-<hash of the window>': the clip's id in every later table and the ledger",
    "video_id": VIDEO_COLUMNS["video_id"],
    "start_s": "where the single-scene window starts in the video, seconds",
    "end_s": "where it ends, seconds (exclusive)",
    "start_frame": "first frame of the window",
    "end_frame": "frame after the last one (exclusive)",
    "fps": VIDEO_COLUMNS["fps"],
    "length_s": "end_s - start_s (kept: 5 to 20 s)",
    "local_path": VIDEO_COLUMNS["local_path"],
    "width": VIDEO_COLUMNS["width"],
    "height": VIDEO_COLUMNS["height"],
    "description": VIDEO_COLUMNS["description"],
    "uri": VIDEO_COLUMNS["uri"],
}


# 2: the detector sees FFmpeg point-sampled frames (closer to PySceneDetect's)
@partitioned_stage("clips", SceneSplitConfig, ins=("videos",), kind="decode", version="2", settings_from=SHARED_SETTINGS,
                   column_docs=CLIP_COLUMNS)
def clips(stage: StageContext, config: SceneSplitConfig, videos: pd.DataFrame) -> StageResult:
    """Single-scene windows of 5–20 s (PySceneDetect ContentDetector by default)."""
    lost = restage(stage, videos, config.cache_max_bytes)
    decisions = [error(video_id, f"scene detection: {reason}", item_kind="video") for video_id, reason in lost.items()]
    videos = videos[~videos["video_id"].isin(lost)]
    in_flight = max(1, min(config.workers, len(videos)))
    decode_threads = decode_threads_for(in_flight) if config.decode_threads is None else config.decode_threads
    tasks = [SplitTask(video_id=v.video_id, path=v.local_path, detector=config.detector, threshold=config.threshold,
                       min_scene_len=config.min_scene_len, frame_skip=config.frame_skip, downscale=config.downscale,
                       min_length_s=config.min_length_s, max_length_s=config.max_length_s,
                       decode_threads=decode_threads, max_clips=config.max_clips_per_video, window=_window(v))
             for v in videos.itertuples(index=False)]
    stage.log.info(f"scene detection on {len(tasks)} videos, {in_flight} at a time, "
                   f"{decode_threads or 'auto'} decoder thread(s) each")
    by_video = videos.set_index("video_id")
    decode_cost = {v.video_id: pixels_to_decode(v) for v in videos.itertuples(index=False)}
    if gpu_split.configured_decoder() == "nvdec" and not any(map(gpu_split.unsupported_setting, tasks)):
        # One decode per video on the GPU: cuts, and each kept clip's frames cached for human_presence.
        results = gpu_split.split_videos(tasks, threads=config.workers, cache_dir=str(stage.storage.layout.cache),
                                         long_side=gpu_split.sample_long_side(), progress=stage.progress("scene detection"))
    else:
        results = run_isolated(split_into_clips, tasks, workers=config.workers, timeout_s=config.timeout_s,
                               cost=lambda task: decode_cost[task.video_id], progress=stage.progress("scene detection"))
    rows, scenes = [], 0
    for result in results:
        video_id = result.item.video_id
        if not result.ok:
            decisions.append(error(video_id, f"scene detection: {result.error}", item_kind="video"))
            continue
        scenes += len(result.value["clips"])
        decisions += result.value["decisions"]
        kept_ids = {d.item_id for d in result.value["decisions"] if d.verdict == "kept"}
        video = by_video.loc[video_id]
        rows += [{**c, "local_path": video.local_path, "width": int(video.width), "height": int(video.height),
                  "description": video.description, "uri": video.uri}
                 for c in result.value["clips"] if c["clip_id"] in kept_ids]
    with_clips = {row["video_id"] for row in rows}
    release_sources(stage, videos.loc[~videos["video_id"].isin(with_clips), "local_path"], config.mirror_sources)
    return StageResult(pd.DataFrame(rows, columns=list(CLIP_COLUMNS)), decisions,
                       metadata={"scenes": scenes, "videos": len(tasks)},
                       preview=["clip_id", "video_id", "start_s", "end_s", "length_s", "fps"])


def _window(video) -> tuple[float, float] | None:
    """The row's [start, end] window the scene split keeps to (None: the whole file)."""
    start, end = getattr(video, "window_start_s", None), getattr(video, "window_end_s", None)
    return None if start is None or end is None or pd.isna(start) or pd.isna(end) else (float(start), float(end))
