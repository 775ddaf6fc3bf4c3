"""Scene cuts of one video: PySceneDetect's detectors fed by our own PyAV decoder.

Why not ``scenedetect.detect()``: it converts every frame to full-size BGR and then shrinks it,
and it reports frame positions through OpenCV. We decode with PyAV, convert only the pixels of
the analysis grid (the detector only ever sees ~256 px wide frames, the size PySceneDetect's
auto-downscale gives it), and time every frame by its own ``pts * time_base`` so cut times stay
right on variable-frame-rate video. The detectors are PySceneDetect's, so thresholds mean what
its documentation says; content and adaptive detectors compute their (identical) frame score
with fewer copies.

Frames are processed as they are decoded; the video is never held in memory.

`split_into_clips` is the clips stage's work on one video (cuts, then candidate clips with their
length decisions), run in a killable child process per video.
"""

from __future__ import annotations

import bisect
import functools
import math
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from typing import Any

from haic_core.accumulation.scenes import at_most_per_video, split_video_into_clips
from haic_resources.video.av_open import open_input
from haic_resources.video.item_error import ItemError

DETECTOR_KINDS = ("content", "adaptive", "threshold")
DEFAULT_MIN_SCENE_LEN_FRAMES = 15  # PySceneDetect's default for all three detectors
PYSCENEDETECT_MIN_WIDTH = 256  # PySceneDetect's auto-downscale target (scene_manager.DEFAULT_MIN_WIDTH)
DEFAULT_TIMEOUT_S = 600.0


class SceneDetectError(ItemError):
    """Scene detection could not run on this video; `reason` says why in one line."""


@dataclass(frozen=True)
class DetectionSettings:
    """Which PySceneDetect detector, with which parameters, sees which decoded frames."""

    detector: str = "content"  # one of DETECTOR_KINDS
    threshold: float | None = None  # None: that detector's own default
    min_scene_len: int = DEFAULT_MIN_SCENE_LEN_FRAMES
    detector_options: Mapping[str, Any] = field(default_factory=dict)  # more detector arguments
    frame_skip: int = 0  # analyse one frame in frame_skip + 1 (PySceneDetect's meaning)
    downscale: int | None = None  # None: PySceneDetect's auto-downscale; else a factor (1 = full size)
    decode_threads: int = 0  # FFmpeg decoder threads: 0 = FFmpeg's choice (see `decode_threads_for`)


@dataclass(frozen=True)
class SceneCuts:
    """Where one video's scenes change.

    `cut_times_s[i]` is the presentation time (pts * time_base, relative to the stream start) of
    the first frame of scene i+1, and `cut_frames[i]` that frame's index in presentation order.
    `duration_s` ends where the last frame ends, so the last scene is [last cut, duration_s).
    """

    cut_times_s: tuple[float, ...]
    cut_frames: tuple[int, ...]
    frame_count: int
    duration_s: float
    fps: float
    width: int
    height: int
    analysis_size: tuple[int, int]  # (width, height) the detector saw
    detector: str
    detector_params: dict[str, Any] = field(default_factory=dict)
    frame_skip: int = 0
    elapsed_s: float = 0.0


def build_detector(kind: str = "content", threshold: float | None = None,
                   min_scene_len: int = DEFAULT_MIN_SCENE_LEN_FRAMES,
                   options: Mapping[str, Any] | None = None):
    """A PySceneDetect detector; `threshold=None` keeps that detector's own default
    (content 27.0, adaptive 3.0, threshold 12). Content and adaptive detectors get
    `_HsvScoreMixin`'s faster, bit-identical frame score."""
    from scenedetect import ThresholdDetector

    kwargs: dict[str, Any] = {"min_scene_len": min_scene_len, **dict(options or {})}
    if kind == "content":
        if threshold is not None:
            kwargs["threshold"] = threshold
        return _content_detector_class()(**kwargs)
    if kind == "adaptive":
        if threshold is not None:
            kwargs["adaptive_threshold"] = threshold
        return _adaptive_detector_class()(**kwargs)
    if kind == "threshold":
        if threshold is not None:
            kwargs["threshold"] = threshold
        return ThresholdDetector(**kwargs)
    raise SceneDetectError(f"unknown detector kind {kind!r}; choose one of {DETECTOR_KINDS}")


class _HsvScoreMixin:
    """ContentDetector's frame score (mean absolute HSV difference to the previous frame,
    weighted), computed with one `cv2.absdiff` + `cv2.sumElems` over the 3-channel HSV image
    instead of a `cv2.split` and three int32 copies per channel.

    The numbers are the same, bit for bit: each component is an exact integer sum of absolute
    differences divided by the pixel count, here as in PySceneDetect
    (`tests/test_scene_detect.py` checks every frame of a real video against the original).
    Edge weights or a StatsManager fall back to PySceneDetect's own code, which handles them.
    """

    _last_hsv = None

    def _calculate_frame_score(self, timecode, frame_img):
        import cv2
        import numpy

        if self._weights.delta_edges != 0.0 or self.stats_manager is not None:
            return super()._calculate_frame_score(timecode, frame_img)
        hsv = cv2.cvtColor(frame_img, cv2.COLOR_BGR2HSV)
        last, self._last_hsv = self._last_hsv, hsv
        if last is None:
            return 0.0
        num_pixels = float(hsv.shape[0] * hsv.shape[1])
        sums = cv2.sumElems(cv2.absdiff(hsv, last))
        # numpy scalars, as in PySceneDetect: from Python 3.12 on, sum() of plain floats is
        # compensated while numpy scalars add plainly, which can change the last bit.
        components = (*(numpy.float64(total) / num_pixels for total in sums[:3]), 0.0)
        weights = self._weights
        return sum(c * w for c, w in zip(components, weights)) / sum(abs(w) for w in weights)


@functools.cache
def _content_detector_class():
    from scenedetect import ContentDetector

    return type("FastContentDetector", (_HsvScoreMixin, ContentDetector), {})


@functools.cache
def _adaptive_detector_class():
    from scenedetect import AdaptiveDetector

    return type("FastAdaptiveDetector", (_HsvScoreMixin, AdaptiveDetector), {})


def analysis_size(width: int, height: int, downscale: int | None = None) -> tuple[int, int]:
    """The frame size the detector sees: PySceneDetect's auto-downscale (longer side shrunk to
    about 256 px) when `downscale` is None, else an integer factor (1 = full size)."""
    if downscale is None:
        factor = max(width, height) / PYSCENEDETECT_MIN_WIDTH
    else:
        factor = float(downscale)
    if factor <= 1.0:
        return width, height
    return max(1, round(width / factor)), max(1, round(height / factor))


def detect_scenes(path: str | os.PathLike, settings: DetectionSettings = DetectionSettings(),
                  timeout_s: float | None = DEFAULT_TIMEOUT_S) -> SceneCuts:
    """Detect scene cuts in the video at `path`.

    `settings.detector` is "content" (PySceneDetect's ContentDetector, the default), "adaptive"
    or "threshold"; `threshold`/`min_scene_len`/`detector_options` go to it. `frame_skip=N`
    analyses one frame in N+1 (faster, less exact). `decode_threads` is FFmpeg's decoder thread
    count: 0 lets FFmpeg choose (frame threads on every core, the fastest for one video alone),
    1 decodes on one thread (the least CPU per frame, the fastest when several videos run at
    once; see `decode_threads_for`). With `timeout_s` set (the default), the work runs in a
    child process that is killed at the deadline. Raises `SceneDetectError` with a one-line
    reason.
    """
    if timeout_s is None:
        return detect_scenes_in_process(str(path), settings)
    from haic_resources.video.isolation import call_isolated_or_raise

    return call_isolated_or_raise(SceneDetectError, "scene detection", detect_scenes_in_process, str(path),
                                  settings, timeout_s=timeout_s)


def detect_scenes_in_process(path: str, settings: DetectionSettings = DetectionSettings()) -> SceneCuts:
    """`detect_scenes` without the child process (for callers that are already isolated)."""
    import av
    from scenedetect import FrameTimecode
    from scenedetect.common import Timecode

    if settings.frame_skip < 0:
        raise SceneDetectError("frame_skip must be >= 0")
    if settings.decode_threads < 0:
        raise SceneDetectError("decode_threads must be >= 0 (0 = FFmpeg's choice)")
    started = time.perf_counter()
    scene_detector = build_detector(settings.detector, settings.threshold, settings.min_scene_len,
                                    settings.detector_options)
    try:
        container = open_input(path)
    except av.error.FFmpegError as exc:
        raise SceneDetectError(f"cannot open video: {exc.strerror or type(exc).__name__}")
    with container:
        if not container.streams.video:
            raise SceneDetectError("no video stream")
        stream = container.streams.video[0]
        cc = stream.codec_context
        stream.thread_type = "AUTO"  # FFmpeg frame+slice threads; thread_count 1 turns them off
        cc.thread_count = settings.decode_threads
        width, height = int(cc.width), int(cc.height)
        if width <= 0 or height <= 0:
            raise SceneDetectError(f"implausible resolution {width}x{height}")
        size = analysis_size(width, height, settings.downscale)
        rate = stream.average_rate or stream.guessed_rate or Fraction(25)
        rate = Fraction(rate.numerator, rate.denominator)
        time_base = Fraction(stream.time_base.numerator, stream.time_base.denominator)
        start_pts = stream.start_time or 0

        frame_times: list[float] = []  # every frame's time, skipped ones included
        cut_timecodes: list = []
        last_timecode = None
        end_s = 0.0
        for index, pts, duration, image in _decoded_frames(container, stream, size, settings.frame_skip):
            rel_pts = (pts - start_pts) if pts is not None else round(index / rate / time_base)
            t = float(rel_pts * time_base)
            frame_times.append(t)
            step = float(duration * time_base) if duration else float(1 / rate)
            end_s = max(end_s, t + step)
            if image is None:  # skipped by frame_skip
                continue
            # The same kind of timecode PySceneDetect's own backends produce: pts-based, with
            # the average rate only for frame-count conversions (min_scene_len).
            last_timecode = FrameTimecode(Timecode(pts=rel_pts, time_base=time_base), fps=rate)
            cut_timecodes += scene_detector.process_frame(last_timecode, image)
        if last_timecode is None:
            raise SceneDetectError("no decodable video frames")
        cut_timecodes += scene_detector.post_process(last_timecode)

    cut_times = sorted({float(tc.seconds) for tc in cut_timecodes})
    cut_frames = [_nearest_index(frame_times, t) for t in cut_times]
    return SceneCuts(
        cut_times_s=tuple(cut_times),
        cut_frames=tuple(cut_frames),
        frame_count=len(frame_times),
        duration_s=end_s,
        fps=float(rate),
        width=width,
        height=height,
        analysis_size=size,
        detector=settings.detector,
        detector_params={"threshold": settings.threshold, "min_scene_len": settings.min_scene_len,
                         **dict(settings.detector_options or {})},
        frame_skip=settings.frame_skip,
        elapsed_s=time.perf_counter() - started,
    )


def decode_threads_for(workers: int, cpu_count: int | None = None) -> int:
    """Decoder threads per video when `workers` videos are decoded at once: the cores shared out,
    and 1 (no FFmpeg threads) once every core has its own video.

    Measured on the 2-core CI machine (bench/bench_scene_split.py): FFmpeg's frame threads cut
    one 720p H.264 video's decode time by only ~20 % but cost ~40 % more CPU, so with as many
    videos in flight as cores, single-threaded decoders finish the batch sooner.
    """
    cores = cpu_count or os.cpu_count() or 1
    if workers <= 1:
        return 0
    return max(1, cores // workers)


# --------------------------------------------------------------------------------------------
# The clips stage's work on one video


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
    max_clips: int | None = None  # most clips kept per video (None: no limit)
    window: tuple[float, float] | None = None  # the metadata row's [start, end] seconds: scenes are cut to it

    @property
    def detection(self) -> DetectionSettings:
        return DetectionSettings(detector=self.detector, threshold=self.threshold, min_scene_len=self.min_scene_len,
                                 frame_skip=self.frame_skip, downscale=self.downscale,
                                 decode_threads=self.decode_threads)


def split_into_clips(task: SplitTask) -> dict[str, Any]:
    """Scene cuts of one video and its candidate clips with their length decisions (plain,
    picklable data: this runs in a child process)."""
    cuts = detect_scenes_in_process(task.path, task.detection)
    clips, decisions = split_video_into_clips(task.video_id, cuts.cut_times_s, cuts.cut_frames,
                                              cuts.duration_s, cuts.frame_count, cuts.fps,
                                              task.min_length_s, task.max_length_s, task.window)
    if task.max_clips is not None:
        decisions = at_most_per_video(clips, decisions, task.max_clips)
    return {"cuts": list(cuts.cut_times_s), "elapsed_s": cuts.elapsed_s,
            "clips": [asdict(c) for c in clips], "decisions": decisions}


def pixels_to_decode(video: Any) -> float:
    """A video's decode work (width x height x frames) from its probe or its `videos` row; 0 when
    a value is missing. `run_isolated(cost=...)` starts the biggest first."""
    try:
        values = [float(v) for v in (video.width, video.height, video.frame_count)]
    except (TypeError, ValueError):  # None, or pandas' NA in a table row
        return 0.0
    return math.prod(values) if all(math.isfinite(v) for v in values) else 0.0


# --------------------------------------------------------------------------------------------
# Helpers of detect_scenes_in_process: frames decoded for the detector, cuts found by time


def _nearest_index(times: list[float], t: float) -> int:
    """Index of the frame whose time is nearest `t` (times are in decode order, which for
    presentation-ordered decoder output is ascending)."""
    i = bisect.bisect_left(times, t)
    if i == 0:
        return 0
    if i == len(times):
        return len(times) - 1
    return i if times[i] - t <= t - times[i - 1] else i - 1


def _decoded_frames(container, stream, size: tuple[int, int],
                    frame_skip: int) -> Iterator[tuple[int, int | None, int | None, Any]]:
    """(index, pts, duration, small BGR image or None when skipped) for every frame.

    Decoded on the calling thread: PyAV holds the GIL while it decodes, so a Python decode
    thread beside the detector only adds GIL hand-offs (measured: a busy Python thread slows a
    single-threaded decode 15-fold). Overlap comes from FFmpeg's own frame threads instead.
    """
    import av

    shrink = _Shrinker(size)
    try:
        for index, frame in enumerate(container.decode(stream)):
            keep = frame_skip == 0 or index % (frame_skip + 1) == 0
            yield index, frame.pts, frame.duration, (shrink(frame) if keep else None)
    except av.error.FFmpegError as exc:
        raise SceneDetectError(f"decoding failed: {exc.strerror or type(exc).__name__}")


class _Shrinker:
    """Decoded frame -> small BGR image for the detector, in one FFmpeg scaler call that samples
    the analysis-size grid (nearest neighbour) and converts only those pixels.

    PySceneDetect converts every full-size frame to BGR and then shrinks it with OpenCV's
    bilinear resize, which at its ~5x auto-downscale reads little more than one source pixel per
    output pixel; sampling that grid directly gives nearly the same image for a fraction of the
    work. Measured on all 20 videos of ../shared/media against PySceneDetect's own frames: the
    per-frame ContentDetector score differs by at most 0.9 (threshold 27) and no frame changes
    side of the threshold; bilinear or area scaling in FFmpeg differ by up to 109 in fades
    (near-black hue) and the plane-by-plane resize we used before by up to 8.
    """

    def __init__(self, size: tuple[int, int]):
        from av.video.reformatter import VideoReformatter

        self.size = size
        self._reformatter = VideoReformatter()  # reused: building a scaler per frame is slow

    def __call__(self, frame):
        width, height = self.size
        return self._reformatter.reformat(
            frame, width=width, height=height, format="bgr24", interpolation="POINT"
        ).to_ndarray()
