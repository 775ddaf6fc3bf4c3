"""Scene cuts of one video: PySceneDetect's detectors fed by our own PyAV decoder.

Why not ``scenedetect.detect()``: it decodes every frame to full-size BGR and then shrinks it,
and it reports frame positions through OpenCV. We decode with FFmpeg's frame threads, shrink the
YUV planes *before* the colour conversion (the detector only ever sees ~256 px wide frames, the
same size PySceneDetect's auto-downscale gives it), and time every frame by its own
``pts * time_base`` so cut times stay right on variable-frame-rate video. The detectors
themselves are PySceneDetect's, unchanged, so thresholds mean what its documentation says.

Frames stream through a small queue; the video is never held in memory.
"""

from __future__ import annotations

import bisect
import os
import queue
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any
from haic_resources.av_open import open_input
from haic_resources.item_error import ItemError

DETECTOR_KINDS = ("content", "adaptive", "threshold")
DEFAULT_MIN_SCENE_LEN_FRAMES = 15  # PySceneDetect's default for all three detectors
PYSCENEDETECT_MIN_WIDTH = 256  # PySceneDetect's auto-downscale target (scene_manager.DEFAULT_MIN_WIDTH)
DEFAULT_TIMEOUT_S = 600.0
_QUEUE_FRAMES = 4  # decoded frames buffered between the decode thread and the detector

# 8-bit planar YUV layouts whose planes we can shrink directly, and the 4:4:4 layout that the
# shrunk planes form (same range: the "j" formats are full range).
_PLANAR_YUV = {
    "yuv420p": "yuv444p", "yuv422p": "yuv444p", "yuv444p": "yuv444p",
    "yuvj420p": "yuvj444p", "yuvj422p": "yuvj444p", "yuvj444p": "yuvj444p",
}


class SceneDetectError(ItemError):
    """Scene detection could not run on this video; `reason` says why in one line."""


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
    (content 27.0, adaptive 3.0, threshold 12)."""
    from scenedetect import AdaptiveDetector, ContentDetector, ThresholdDetector

    kwargs: dict[str, Any] = {"min_scene_len": min_scene_len, **dict(options or {})}
    if kind == "content":
        if threshold is not None:
            kwargs["threshold"] = threshold
        return ContentDetector(**kwargs)
    if kind == "adaptive":
        if threshold is not None:
            kwargs["adaptive_threshold"] = threshold
        return AdaptiveDetector(**kwargs)
    if kind == "threshold":
        if threshold is not None:
            kwargs["threshold"] = threshold
        return ThresholdDetector(**kwargs)
    raise SceneDetectError(f"unknown detector kind {kind!r}; choose one of {DETECTOR_KINDS}")


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


def detect_scenes(
    path: str | os.PathLike,
    detector: str = "content",
    threshold: float | None = None,
    min_scene_len: int = DEFAULT_MIN_SCENE_LEN_FRAMES,
    detector_options: Mapping[str, Any] | None = None,
    frame_skip: int = 0,
    downscale: int | None = None,
    timeout_s: float | None = DEFAULT_TIMEOUT_S,
) -> SceneCuts:
    """Detect scene cuts in the video at `path`.

    `detector` is "content" (PySceneDetect's ContentDetector, the default), "adaptive" or
    "threshold"; `threshold`/`min_scene_len`/`detector_options` go to it. `frame_skip=N`
    analyses one frame in N+1 (faster, less exact; PySceneDetect's meaning). With `timeout_s`
    set (the default), the work runs in a child process that is killed at the deadline.
    Raises `SceneDetectError` with a one-line reason.
    """
    kwargs = dict(detector=detector, threshold=threshold, min_scene_len=min_scene_len,
                  detector_options=dict(detector_options or {}), frame_skip=frame_skip,
                  downscale=downscale)
    if timeout_s is None:
        return detect_scenes_in_process(str(path), **kwargs)
    from haic_resources.video_probe import call_isolated_or_raise

    return call_isolated_or_raise(SceneDetectError, "scene detection", detect_scenes_in_process, str(path),
                                  timeout_s=timeout_s, **kwargs)


def detect_scenes_in_process(
    path: str,
    detector: str = "content",
    threshold: float | None = None,
    min_scene_len: int = DEFAULT_MIN_SCENE_LEN_FRAMES,
    detector_options: Mapping[str, Any] | None = None,
    frame_skip: int = 0,
    downscale: int | None = None,
) -> SceneCuts:
    """`detect_scenes` without the child process (for callers that are already isolated)."""
    import av
    from scenedetect import FrameTimecode
    from scenedetect.common import Timecode

    if frame_skip < 0:
        raise SceneDetectError("frame_skip must be >= 0")
    started = time.perf_counter()
    scene_detector = build_detector(detector, threshold, min_scene_len, detector_options)
    try:
        container = open_input(path)
    except av.error.FFmpegError as exc:
        raise SceneDetectError(f"cannot open video: {exc.strerror or type(exc).__name__}")
    with container:
        if not container.streams.video:
            raise SceneDetectError("no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"  # FFmpeg frame+slice threads
        cc = stream.codec_context
        width, height = int(cc.width), int(cc.height)
        if width <= 0 or height <= 0:
            raise SceneDetectError(f"implausible resolution {width}x{height}")
        size = analysis_size(width, height, downscale)
        rate = stream.average_rate or stream.guessed_rate or Fraction(25)
        rate = Fraction(rate.numerator, rate.denominator)
        time_base = Fraction(stream.time_base.numerator, stream.time_base.denominator)
        start_pts = stream.start_time or 0

        frame_times: list[float] = []  # every frame's time, skipped ones included
        cut_timecodes: list = []
        last_timecode = None
        end_s = 0.0
        for index, pts, duration, image in _decoded_frames(container, stream, size, frame_skip):
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
        detector=detector,
        detector_params={"threshold": threshold, "min_scene_len": min_scene_len,
                         **dict(detector_options or {})},
        frame_skip=frame_skip,
        elapsed_s=time.perf_counter() - started,
    )


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
    """(index, pts, duration, small BGR image or None when skipped) for every frame, decoded and
    shrunk in a background thread so that decoding overlaps the detector's work."""
    out: queue.Queue = queue.Queue(_QUEUE_FRAMES)
    stop = threading.Event()
    failure: list[BaseException] = []

    def produce() -> None:
        shrink = _Shrinker(size)
        try:
            for index, frame in enumerate(container.decode(stream)):
                if stop.is_set():
                    break
                keep = frame_skip == 0 or index % (frame_skip + 1) == 0
                image = shrink(frame) if keep else None
                out.put((index, frame.pts, frame.duration, image))
        except BaseException as exc:  # handed to the consumer, raised there
            failure.append(exc)
        finally:
            out.put(None)

    worker = threading.Thread(target=produce, name="scene-decode", daemon=True)
    worker.start()
    try:
        while (item := out.get()) is not None:
            yield item
    finally:
        stop.set()
        while worker.is_alive():  # unblock a producer waiting on a full queue
            try:
                out.get_nowait()
            except queue.Empty:
                pass
            worker.join(0.05)
    if failure:
        exc = failure[0]
        import av

        if isinstance(exc, av.error.FFmpegError):
            raise SceneDetectError(f"decoding failed: {exc.strerror or type(exc).__name__}")
        raise exc


class _Shrinker:
    """Decoded frame -> small BGR image for the detector.

    For planar 8-bit YUV the planes are shrunk first with OpenCV's bilinear resize (what
    PySceneDetect applies to its full-size BGR frames) and only the small image is converted to
    BGR, by FFmpeg's converter with the frame's own colourspace and range (as PySceneDetect's
    OpenCV backend does at full size). This skips the full-size colour conversion that
    dominates PySceneDetect's own cost. Other pixel formats go through FFmpeg's scaler.
    """

    def __init__(self, size: tuple[int, int]):
        from av.video.reformatter import VideoReformatter

        self.size = size
        self._reformatter = VideoReformatter()  # reused: building a scaler per frame is slow

    def __call__(self, frame):
        import av
        import cv2
        import numpy as np

        width, height = self.size
        full_range_format = _PLANAR_YUV.get(frame.format.name)
        if full_range_format is None:
            return self._reformatter.reformat(
                frame, width=width, height=height, format="bgr24", interpolation="BILINEAR"
            ).to_ndarray()
        planes = []
        for plane in frame.planes:
            view = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
            view = view[:, : plane.width]
            if view.shape != (height, width):
                view = cv2.resize(view, (width, height), interpolation=cv2.INTER_LINEAR)
            planes.append(view)
        # FFmpeg's converter at the small size: hand-rolled YUV->BGR matrices differ by a level
        # or two near black, which flips ContentDetector's hue score inside fades.
        small = av.VideoFrame.from_ndarray(np.stack(planes), format=full_range_format)
        small.colorspace = frame.colorspace
        small.color_range = frame.color_range
        return self._reformatter.reformat(small, format="bgr24").to_ndarray()
