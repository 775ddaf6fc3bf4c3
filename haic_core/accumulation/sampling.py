"""Which instants of a clip the human filters look at.

Both samplers put each sample at the centre of an equal bin of the clip window, so a sample is
never on the clip's first or last frame (often a transition frame at a scene cut) and the
samples are symmetric in the window. Times are seconds on the video's own clock (0 = the
first frame), the same clock as the scene stage's clip windows.
"""

from __future__ import annotations

import math

PRESENCE_SAMPLES = 16  # paper: "sample 16 frames uniformly from each clip"
POSE_FPS = 1.0  # paper: keypoints "at 1 frame per second"


def _check_window(start_s: float, end_s: float) -> None:
    if not (math.isfinite(start_s) and math.isfinite(end_s)) or end_s <= start_s:
        raise ValueError(f"clip window must satisfy start < end, got [{start_s}, {end_s}]")


def uniform_timestamps(start_s: float, end_s: float, count: int = PRESENCE_SAMPLES) -> list[float]:
    """`count` times at the centres of `count` equal bins of [start_s, end_s].

    t_i = start + (i + 0.5) * (end - start) / count, i = 0..count-1.
    """
    _check_window(start_s, end_s)
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    step = (end_s - start_s) / count
    return [start_s + (i + 0.5) * step for i in range(count)]


def per_second_timestamps(start_s: float, end_s: float, fps: float = POSE_FPS) -> list[float]:
    """Times at `fps` samples per second: the centres of the whole 1/fps-long bins in the window.

    t_k = start + (k + 0.5) / fps for k = 0..floor((end - start) * fps) - 1; a trailing partial
    bin gets no sample (a 10.29 s clip gives 10 samples at 0.5 … 9.5 s). A window shorter than
    one period gets its centre, so every clip has at least one pose sample.
    """
    _check_window(start_s, end_s)
    if fps <= 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    # The small epsilon keeps a window of exactly N periods from losing its last bin to rounding.
    count = int(math.floor((end_s - start_s) * fps + 1e-9))
    if count == 0:
        return [(start_s + end_s) / 2.0]
    return [start_s + (k + 0.5) / fps for k in range(count)]


def merge_timestamps(*groups: list[float], decimals: int = 6) -> list[float]:
    """Sorted union of sample times (equal up to `decimals` places counts once)."""
    return sorted({round(t, decimals) for group in groups for t in group})
