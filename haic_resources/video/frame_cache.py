"""A kept clip's sampled frames handed from the clips stage to human_presence, so that the GPU path decodes each
video once (`single_pass`): the clips stage's pass already held every frame at the people model's size.

One file per clip under HAIC_HOME/cache/clip_frames/, named by a hash of (video path, window, long side): the
frames (K, h, w, 3) uint8 and the instants they answer. human_presence asks with the instants it wants
(`read_cached`); a file whose instants or size differ (another `samples` or `pose_fps` setting, another
model) is a miss, and so is no file: the reader then decodes as before. A file is removed once read, so
the cache holds only clips that human_presence has not yet seen.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from haic_resources.video.frame_reader import FrameSample, SampledFrame

SUBDIR = "clip_frames"


def entry_path(cache_dir: str | os.PathLike, video_path: str, start_s: float, end_s: float, long_side: int) -> Path:
    key = f"{video_path}|{start_s:.6f}|{end_s:.6f}|{long_side}"
    return Path(cache_dir) / SUBDIR / f"{hashlib.sha1(key.encode()).hexdigest()}.npz"


def write_clip_frames(cache_dir: str | os.PathLike, video_path: str, start_s: float, end_s: float, long_side: int,
                      times: list[float], frame_times: list[float], images: np.ndarray, width: int,
                      height: int) -> Path:
    """Store one clip's frames (atomically: a reader never sees half a file)."""
    path = entry_path(cache_dir, video_path, start_s, end_s, long_side)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.partial")
    with open(partial, "wb") as handle:
        np.savez(handle, images=np.ascontiguousarray(images), times=np.asarray(times, dtype=np.float64),
                 frame_times=np.asarray(frame_times, dtype=np.float64), size=np.asarray([width, height]))
    os.replace(partial, path)
    return path


def read_cached(cache_dir: str | os.PathLike, video_path: str, times: list[float], start_s: float, end_s: float,
                long_side: int | None) -> FrameSample | None:
    """The stored frames for exactly these instants at this size, or None. `frames_decoded` is 0: the clips
    stage's pass decoded them."""
    if long_side is None:
        return None
    path = entry_path(cache_dir, video_path, start_s, end_s, long_side)
    try:
        with np.load(path) as stored:
            images, stored_times = stored["images"], stored["times"]
            frame_times, (width, height) = stored["frame_times"], stored["size"]
    except (FileNotFoundError, OSError, KeyError, ValueError):
        return None
    if len(stored_times) != len(times) or not np.allclose(stored_times, times, rtol=0, atol=1e-9):
        return None
    path.unlink(missing_ok=True)
    frames = [SampledFrame(float(t), float(ft), images[k], int(width), int(height))
              for k, (t, ft) in enumerate(zip(times, frame_times))]
    return FrameSample(frames, int(width), int(height), 0)


def cached_or_read(path: str, times: list[float], start_s: float, end_s: float, long_side: int | None, *,
                   cache_dir: str, fallback) -> FrameSample:
    """A `FrameReader` (clip_batch) that takes the clips stage's frames when it left them, else `fallback`'s."""
    return read_cached(cache_dir, path, times, start_s, end_s, long_side) or fallback(path, times, start_s, end_s,
                                                                                      long_side)
