"""Per-video work of the video stage, run in killable child processes (one video each).

Each function takes and returns plain, picklable data, so a corrupt file that hangs or crashes
the decoder costs only its own item. The Dagster assets fan these out with `run_isolated`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from haic_core.accumulation.scenes import split_video_into_clips
from haic_resources.video.media_fetch import fetch_media
from haic_resources.video.scene_detect import detect_scenes_in_process
from haic_resources.video.probe import probe_video_in_process


@dataclass(frozen=True)
class AcquireTask:
    video_id: str
    uri: str
    media_root: str
    allowed_roots: tuple[str, ...]
    s3_endpoint_url: str | None
    max_bytes: int
    connect_timeout_s: float
    read_timeout_s: float
    retries: int


def acquire_and_probe(task: AcquireTask) -> dict[str, Any]:
    """Fetch the video into the media store (or find it cached) and probe it."""
    media = fetch_media(task.uri, task.media_root, allowed_roots=list(task.allowed_roots),
                        s3_endpoint_url=task.s3_endpoint_url, max_bytes=task.max_bytes,
                        connect_timeout_s=task.connect_timeout_s, read_timeout_s=task.read_timeout_s,
                        retries=task.retries)
    probe = probe_video_in_process(str(media.local_path))
    return {"media": {**asdict(media), "local_path": str(media.local_path)}, "probe": asdict(probe)}


@dataclass(frozen=True)
class SplitTask:
    video_id: str
    path: str
    detector: str
    threshold: float | None
    min_scene_len: int
    frame_skip: int
    downscale: int | None
    min_length_s: float
    max_length_s: float
    decode_threads: int = 0


def pixels_to_decode(video: Any) -> float:
    """A video's decode work (width x height x frames) from its probe or its `videos` row; 0 when
    a value is missing. `run_isolated(cost=...)` starts the biggest first."""
    try:
        values = [float(v) for v in (video.width, video.height, video.frame_count)]
    except (TypeError, ValueError):  # None, or pandas' NA in a table row
        return 0.0
    return math.prod(values) if all(math.isfinite(v) for v in values) else 0.0


def split_into_clips(task: SplitTask) -> dict[str, Any]:
    """Scene cuts of one video and its candidate clips with their length decisions."""
    cuts = detect_scenes_in_process(task.path, detector=task.detector, threshold=task.threshold,
                                    min_scene_len=task.min_scene_len, frame_skip=task.frame_skip,
                                    downscale=task.downscale, decode_threads=task.decode_threads)
    clips, decisions = split_video_into_clips(task.video_id, cuts.cut_times_s, cuts.cut_frames,
                                              cuts.duration_s, cuts.frame_count, cuts.fps,
                                              task.min_length_s, task.max_length_s)
    return {"cuts": list(cuts.cut_times_s), "elapsed_s": cuts.elapsed_s,
            "clips": [asdict(c) for c in clips], "decisions": decisions}
