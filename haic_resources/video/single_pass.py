"""Scene cuts and the people model's frames from one decode of each video: the GPU path of the clips stage.

One pass front to back (`yuv_sources`: NVDEC, or PyAV for what NVDEC cannot decode) gives, per frame:
- ContentDetector's score, computed as `scenedetect.detect()` computes it: the frame in BGR, shrunk by
  (larger side / 256) with OpenCV's INTER_LINEAR, to HSV, mean absolute difference to the previous frame
  (`frame_math`, exact integer emulations of those OpenCV calls). The scores go through PySceneDetect's own
  ContentDetector (threshold, min_scene_len, flash filter), so the cut logic is its own;
- the frame at the people model's long side (area average), kept until the cuts are known.
Then the scenes become clips and length decisions (`split_video_into_clips`, as the CPU path), and each kept
clip's samples (16 presence instants ∪ 1 fps pose instants) are picked from the kept frames by the CPU
reader's rule (the frame nearest each instant, the earlier on a tie, none past the window's end).

Everything runs on the array library of the frames: torch on the GPU for NVDEC (and for PyAV frames when a
GPU is there), numpy without one (the CI reference). The same YUV gives the same bytes either way.
A video longer than `max_kept_frames` keeps no frames (memory); its clips' samples are then decoded again
by the instants reader (`kept_frames=None`).
"""

from __future__ import annotations

import os
import time
from bisect import bisect_left, bisect_right
from dataclasses import asdict, dataclass, field

import numpy as np

from haic_core.accumulation.scenes import at_most_per_video, split_video_into_clips
from haic_resources.pose.clip_batch import clip_times
from haic_resources.video import frame_math as fm
from haic_resources.video.scene_detect import (DEFAULT_MIN_SCENE_LEN_FRAMES, SceneCuts, SceneDetectError,
                                               _nearest_index)
from haic_resources.video.yuv_sources import open_source

DEFAULT_MAX_KEPT_FRAMES = 3000  # ~0.9 GB of 416 × 234 RGB frames: 100 s at 30 fps; WebVid's previews are ≤ 30 s


@dataclass(frozen=True)
class PassSettings:
    threshold: float = 27.0  # ContentDetector's default
    min_scene_len: int = DEFAULT_MIN_SCENE_LEN_FRAMES
    long_side: int | None = 416  # the people model's input long side (YOLOX-nano: 416); None: no frames kept
    batch: int = 32
    max_kept_frames: int = DEFAULT_MAX_KEPT_FRAMES


@dataclass
class VideoPass:
    """One video's pass: cuts (as `scene_detect.detect_scenes` reports them), every frame's time and score,
    and its frames at the model's size (None when not kept), with which reader decoded it and why not NVDEC."""

    cuts: SceneCuts
    times: list[float]
    scores: list[float]
    kept_frames: object | None
    reader: str
    nvdec_refused: str | None = None
    seconds: dict = field(default_factory=dict)


class _GivenScores:
    """A ContentDetector whose frame score is given (the GPU computed it): `process_frame(timecode, score)`."""

    def _calculate_frame_score(self, timecode, frame_img):
        return float(frame_img)


def _detector(threshold: float, min_scene_len: int):
    from scenedetect import ContentDetector

    cls = type("GivenScoreContentDetector", (_GivenScores, ContentDetector), {})
    return cls(threshold=threshold, min_scene_len=min_scene_len)


def _array_module(device: str):
    if device.startswith("cuda"):
        import torch

        return torch
    return None


def decode_pass(path: str | os.PathLike, settings: PassSettings = PassSettings(), device: str = "cpu",
                stream=None) -> VideoPass:
    """Decode `path` once (NVDEC when `device` is a GPU and it can), score every frame, find the cuts and keep
    the model-size frames. Raises `SceneDetectError` with a one-line reason."""
    started = time.perf_counter()
    torch = _array_module(device)
    try:
        source, refused = open_source(path, gpu=torch is not None, stream=stream)
    except Exception as exc:  # PyAV cannot open it either
        raise SceneDetectError(f"cannot open video: {exc}"[:300])
    try:
        times, sums, kept, keep = _scan(source, settings, torch, device)
    except Exception as exc:
        if source.reader != "nvdec":
            raise SceneDetectError(f"decoding failed ({source.reader}): {type(exc).__name__}: {exc}"[:300])
        # NVDEC refused the stream once decoding began (measured: 4:4:4 H.264 passes the demuxer's checks and
        # fails at the sequence header, "Codec not supported on this GPU"): the whole pass again on the CPU
        refused = f"NVDEC: {type(exc).__name__}: {exc}"[:300]
        try:
            source = open_source(path, gpu=False)[0]
            times, sums, kept, keep = _scan(source, settings, torch, device)
        except Exception as again:
            raise SceneDetectError(f"decoding failed (cpu): {type(again).__name__}: {again}"[:300])
    width, height = source.width, source.height
    aw, ah = fm.detect_analysis_size(width, height)
    if not times:
        raise SceneDetectError("no decodable video frames")
    decoded = time.perf_counter()
    all_sums = np.concatenate([s.cpu().numpy() if torch is not None else s for s in sums])
    num_pixels = aw * ah
    scores = [fm.content_score(row, num_pixels) for row in all_sums]
    cut_times = find_cuts(times, scores, source.fps, settings)
    cuts = SceneCuts(
        cut_times_s=tuple(cut_times), cut_frames=tuple(_nearest_index(times, t) for t in cut_times),
        frame_count=len(times), duration_s=times[-1] + float(1 / source.fps), fps=float(source.fps),
        width=width, height=height, analysis_size=(aw, ah), detector="content",
        detector_params={"threshold": settings.threshold, "min_scene_len": settings.min_scene_len},
        elapsed_s=time.perf_counter() - started)
    frames = None
    if keep and kept:
        frames = torch.cat(kept) if torch is not None else np.concatenate(kept)
    return VideoPass(cuts, times, scores, frames, source.reader, refused,
                     {"decode_s": decoded - started, "total_s": time.perf_counter() - started})


def _scan(source, settings: PassSettings, torch, device: str):
    """Every frame of `source`: times, ContentDetector's per-channel sums, and the model-size frames (if kept)."""
    width, height = source.width, source.height
    if width <= 0 or height <= 0:
        raise ValueError(f"implausible resolution {width}x{height}")
    aw, ah = fm.detect_analysis_size(width, height)
    mw, mh = fm.scaled_size(width, height, settings.long_side)
    times: list[float] = []
    sums, kept, previous = [], [], None
    keep = settings.long_side is not None
    for batch in source.batches(settings.batch):
        y, u, v = batch.y, batch.u, batch.v
        if torch is not None and not isinstance(y, torch.Tensor):  # PyAV's planes onto the GPU
            y, u, v = (torch.from_numpy(np.ascontiguousarray(p)).to(device, non_blocking=True) for p in (y, u, v))
        hsv = fm.bgr_to_hsv_cv2(fm.yuv420_to_bgr_linear(y, u, v, source.colour, ah, aw))
        sums.append(fm.hsv_delta_sums(hsv, previous))
        previous = hsv[-1]
        if keep and len(times) + len(batch.times) <= settings.max_kept_frames:
            kept.append(fm.area_resize(fm.yuv420_to_rgb(y, u, v, source.colour), mh, mw))
        elif keep:
            keep, kept = False, []
        times += batch.times
    return times, sums, kept, keep


def find_cuts(times: list[float], scores: list[float], fps, settings: PassSettings) -> list[float]:
    """PySceneDetect's ContentDetector over given scores, frames timed as `scene_detect` times them."""
    from fractions import Fraction

    from scenedetect import FrameTimecode
    from scenedetect.common import Timecode

    detector = _detector(settings.threshold, settings.min_scene_len)
    # Timecodes on a microsecond clock: the detector compares them and counts frames by `fps`.
    base = Fraction(1, 1_000_000)
    rate = Fraction(fps).limit_denominator(1_001_000)
    found, last = [], None
    for t, score in zip(times, scores):
        last = FrameTimecode(Timecode(pts=round(t * 1_000_000), time_base=base), fps=rate)
        found += detector.process_frame(last, score)
    found += detector.post_process(last)
    return sorted({round(float(tc.seconds), 6) for tc in found})


def nearest_frames(times: list[float], targets: list[float], end_s: float) -> list[int]:
    """For each target, the index of the frame the CPU reader (`frame_reader.read_frames_at`) picks: the nearest
    among frames up to `end_s`, the earlier on a tie; past the last candidate, the last one."""
    last = max(1, bisect_right(times, end_s + 1e-6))
    out = []
    for t in targets:
        j = bisect_left(times, t, 0, last)
        if j == last:
            out.append(last - 1)
        elif j == 0:
            out.append(0)
        else:
            out.append(j - 1 if t - times[j - 1] <= times[j] - t else j)
    return out


@dataclass(frozen=True)
class ClipSample:
    """One kept clip's samples from the pass: the instants, where the presence and pose ones sit among them,
    and the frames (None when the pass kept none)."""

    clip: dict
    times: list[float]
    presence_index: list[int]
    pose_index: list[int]
    frame_index: list[int]
    frames: object | None


def split_pass(video_id: str, vpass: VideoPass, min_length_s: float, max_length_s: float,
               window: tuple[float, float] | None = None, max_clips: int | None = None,
               presence_samples: int = 16, pose_fps: float = 1.0) -> tuple[dict, list[ClipSample]]:
    """The clips stage's result for one video (the shape of `scene_detect.split_into_clips`) and each kept
    clip's samples."""
    cuts = vpass.cuts
    clips, decisions = split_video_into_clips(video_id, cuts.cut_times_s, cuts.cut_frames, cuts.duration_s,
                                              cuts.frame_count, cuts.fps, min_length_s, max_length_s, window)
    if max_clips is not None:
        decisions = at_most_per_video(clips, decisions, max_clips)
    for decision in decisions:
        decision.detail["decoder"] = vpass.reader
        if vpass.nvdec_refused:
            decision.detail["nvdec_refused"] = vpass.nvdec_refused
    kept_ids = {d.item_id for d in decisions if d.verdict == "kept"}
    samples = []
    for clip in clips:
        if clip.clip_id not in kept_ids:
            continue
        wanted, presence, pose = clip_times(clip.start_s, clip.end_s, presence_samples, pose_fps)
        index = nearest_frames(vpass.times, wanted, clip.end_s)
        frames = None
        if vpass.kept_frames is not None:
            frames = vpass.kept_frames[_index_like(vpass.kept_frames, index)]
        samples.append(ClipSample(asdict(clip), list(wanted), presence, pose, index, frames))
    result = {"cuts": list(cuts.cut_times_s), "elapsed_s": cuts.elapsed_s, "clips": [asdict(c) for c in clips],
              "decisions": decisions, "reader": vpass.reader, "nvdec_refused": vpass.nvdec_refused,
              "frames_decoded": cuts.frame_count}
    return result, samples


def _index_like(frames, index: list[int]):
    if isinstance(frames, np.ndarray):
        return np.asarray(index)
    import torch

    return torch.as_tensor(index, device=frames.device)
