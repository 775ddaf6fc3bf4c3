"""Decode once, decode little: the frames nearest to given instants of one clip window.

PyAV seeks to the keyframe at or before the first requested instant and decodes forward only until the
last requested instant is passed; no frame after that and no frame before that keyframe is
decoded. Each chosen frame is converted to RGB and resized to the pose model's long side in a
single swscale call (`VideoFrame.reformat`), so no pixel is scaled twice.

Times are seconds on the video's clock: (pts - stream start_time) × time_base, read per frame,
so variable-frame-rate video is handled (we never compute a frame index from a nominal fps).
The one exception is AVI: it stores no presentation times, and with B-frames FFmpeg labels
frames with decode-order guesses (non-monotonic; measured on the NTU and Megamind AVIs), so for
AVI we decode from the first frame and count frames at the stream's average rate (AVI is
constant-rate by construction).

Frames come upright: a source with a display rotation (portrait phone video stores landscape
frames and a display matrix) is turned as a player shows it, the same way the clip cut does, and
the sizes reported are the upright ones.
"""

from __future__ import annotations

import os
from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from haic_resources.video.av_open import open_input
from haic_resources.video.clip_cut import display_rotation_deg


@dataclass(frozen=True)
class SampledFrame:
    """One decoded frame chosen for a requested instant.

    image: (h, w, 3) RGB uint8, upright, already at the model's size; `width`/`height` are the
    video's own upright (pre-resize) size, which keypoint normalization and coverage may use.
    """

    requested_s: float
    pts_s: float
    image: np.ndarray
    width: int
    height: int

    @property
    def scale(self) -> float:
        """Resized width over original width."""
        return self.image.shape[1] / self.width


@dataclass(frozen=True)
class FrameSample:
    """The frames for all requested instants (one per instant, in order) and decode cost."""

    frames: list[SampledFrame]
    width: int
    height: int
    frames_decoded: int


def resized_size(width: int, height: int, long_side: int | None) -> tuple[int, int]:
    """(w, h) with the long side scaled to `long_side` (aspect kept; None: unchanged).

    The same rounding as `pose_movenet.letterbox_shape`, so a frame resized here is never
    resized again by the model.
    """
    if long_side is None:
        return width, height
    scale = long_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


# Containers whose frame pts cannot be trusted for presentation order (see module docstring).
FRAME_COUNTED_FORMATS = ("avi",)


def _frame_time(frame, stream) -> float | None:
    if frame.pts is None:
        return None
    start = stream.start_time or 0
    return float((frame.pts - start) * stream.time_base)


def _counted_time_fn(stream):
    """For frame-counted containers: the n-th decoded frame is at n / average rate."""
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    if not rate:
        raise ValueError("AVI stream without a frame rate; cannot time its frames")
    period = 1.0 / float(rate)
    state = {"n": 0}

    def frame_time(_frame, _stream) -> float:
        t = state["n"] * period
        state["n"] += 1
        return t

    return frame_time


def read_frames_at(
    path: str | os.PathLike,
    timestamps: list[float],
    start_s: float,
    end_s: float,
    long_side: int | None = None,
    interpolation: str = "AREA",
) -> FrameSample:
    """For each requested time (sorted ascending), the decoded frame nearest to it, with the
    video size and the count of decoded frames.

    Candidates are frames up to end_s (a frame just before start_s wins only when it is the
    nearest). Two requests may share one frame (the image array is then shared, converted once).
    Raises ValueError when the window holds no decodable frame.
    """
    targets = [float(t) for t in timestamps]
    if any(b < a for a, b in zip(targets, targets[1:])):
        raise ValueError("timestamps must be sorted ascending")
    if not targets:
        return FrameSample([], 0, 0, 0)
    if targets[0] < start_s - 1e-6 or targets[-1] > end_s + 1e-6:
        raise ValueError(f"timestamps must lie in the clip window [{start_s}, {end_s}]")

    with open_input(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"  # frame threads: decoding is the irreducible cost
        width, height = stream.codec_context.width, stream.codec_context.height
        out_w, out_h = resized_size(width, height, long_side)
        counted = any(name in container.format.name.split(",") for name in FRAME_COUNTED_FORMATS)

        turns = set()

        def convert(frame) -> np.ndarray:
            image = frame.reformat(
                width=out_w, height=out_h, format="rgb24", interpolation=interpolation
            ).to_ndarray()
            rotation = display_rotation_deg(frame)
            turns.add(rotation)
            return np.ascontiguousarray(np.rot90(image, k=rotation // 90)) if rotation else image

        picked, decoded = _nearest_frames(container, stream, targets, end_s, counted, convert)
    if turns & {90, 270}:
        width, height = height, width
    frames = [SampledFrame(requested, t, image, width, height) for requested, t, image in picked]
    if len(frames) != len(targets):
        raise ValueError(
            f"{path}: decoded {len(frames)} of {len(targets)} requested frames in "
            f"[{start_s}, {end_s}]"
        )
    return FrameSample(frames, width, height, decoded)


def _nearest_frames(container, stream, targets: list[float], end_s: float, counted: bool,
                    convert) -> tuple[list[tuple[float, float, np.ndarray]], int]:
    """(requested time, frame time, converted image) for each target that has a frame, and the
    number of frames decoded to find them."""
    frame_time = _counted_time_fn(stream) if counted else _frame_time
    decoded = 0

    def decode_from(seek_s: float | None) -> Iterator:
        nonlocal decoded
        if seek_s is not None and seek_s > 0:
            offset = int(seek_s / stream.time_base) + (stream.start_time or 0)
            container.seek(offset, stream=stream, backward=True, any_frame=False)
        for frame in container.decode(stream):
            decoded += 1
            yield frame

    # Seek, then check that the demuxer really landed at or before the first target; some
    # containers (AVI without index, broken edit lists) land late — re-decode from 0 then.
    # Seek to the first requested instant, not to the window start: a scene window starts
    # on a cut, whose keyframe can sit a hair after start_s, and seeking to start_s would
    # then land on the previous keyframe, a whole scene earlier.
    frames = decode_from(None if counted else targets[0])
    first = next(frames, None)
    first_t = None if first is None or counted else _frame_time(first, stream)
    if not counted and (first is None or first_t is None or first_t > targets[0]):
        container.seek(0, stream=stream, backward=True, any_frame=False)
        frames = decode_from(None)
        first = next(frames, None)

    def all_frames():
        if first is not None:
            yield first
        yield from frames

    i = 0
    prev = prev_t = None
    picked: list[tuple[float, float, np.ndarray]] = []
    cache: dict[float, np.ndarray] = {}  # pts time -> image: a shared frame converts once

    def emit(frame, t) -> None:
        if t not in cache:
            cache.clear()
            cache[t] = convert(frame)
        picked.append((targets[i], t, cache[t]))

    for frame in all_frames():
        t = frame_time(frame, stream)
        if t is None:
            continue
        if t > end_s + 1e-6 and prev is not None:
            break  # past the window: the previous frame is the last candidate
        while i < len(targets) and t >= targets[i]:
            if prev is not None and (targets[i] - prev_t) <= (t - targets[i]):
                emit(prev, prev_t)
            else:
                emit(frame, t)
            i += 1
        if i == len(targets):
            break
        prev, prev_t = frame, t
    while i < len(targets) and prev is not None:  # stream ended before the last targets
        emit(prev, prev_t)
        i += 1
    return picked, decoded


def index_of_times(sample_times: list[float], wanted: list[float], decimals: int = 6) -> list[int]:
    """Positions of `wanted` times in the sorted `sample_times` (e.g. the 1 fps subset of a union)."""
    keys = [round(t, decimals) for t in sample_times]
    out = []
    for t in wanted:
        j = bisect_left(keys, round(t, decimals))
        if j == len(keys) or keys[j] != round(t, decimals):
            raise KeyError(f"time {t} not among the sampled times")
        out.append(j)
    return out
