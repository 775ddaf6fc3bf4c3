"""The clips stage's work on a GPU: `single_pass` over many videos at once, in decoder threads of this process.

Each thread decodes its videos on a CUDA stream of its own (NVDEC in threads of one process: several decode
engines busy, one CUDA context; decoder processes would each hold a context, which the GPU time-slices,
bench/GPU_NOTES.md run 4). Results are the CPU path's (`scene_detect.split_into_clips`) plus which reader
decoded the video, and each kept clip's sampled frames go to the frame cache for human_presence
(`frame_cache`), so no clip is decoded again.

Unlike the CPU path's child processes, a video that hangs the decoder cannot be killed here: the GPU path
is for sources the CPU path has already probed (the videos stage opened each file).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from haic_resources.storage.home import env_setting
from haic_resources.video.frame_cache import write_clip_frames
from haic_resources.video.scene_detect import SceneDetectError, SplitTask
from haic_resources.video.single_pass import PassSettings, decode_pass, split_pass

DECODERS = ("cpu", "nvdec")


def configured_decoder() -> str:
    """HAIC_VIDEO_DECODER: cpu (default: the CPU path, the reference) | nvdec (one decode per video on a GPU)."""
    value = (env_setting("HAIC_VIDEO_DECODER") or "cpu").strip().lower()
    if value not in DECODERS:
        raise ValueError(f"HAIC_VIDEO_DECODER={value!r}: choose one of {', '.join(DECODERS)}")
    return value


def sample_long_side() -> int:
    """HAIC_SAMPLE_LONG_SIDE: the size the clips stage keeps frames at for the people model (YOLOX-nano: 416)."""
    return int(env_setting("HAIC_SAMPLE_LONG_SIDE") or 416)


def unsupported_setting(task: SplitTask) -> str | None:
    """Why the single pass cannot stand in for the CPU path with these settings, or None."""
    if task.detector != "content":
        return f"detector {task.detector} (the GPU path computes ContentDetector's score only)"
    if task.frame_skip or task.downscale is not None:
        return "frame_skip or downscale set (the GPU path analyses every frame at PySceneDetect's auto size)"
    return None


@dataclass(frozen=True)
class SplitOutcome:
    index: int
    item: SplitTask
    ok: bool
    value: dict | None = None
    error: str | None = None


def _device_and_streams(device: str):
    if not device.startswith("cuda"):
        return None
    try:  # the gpu extra; without it (or without a GPU) the same path runs on PyAV's frames
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    return torch


def split_videos(tasks: list[SplitTask], *, device: str = "cuda", threads: int = 8, cache_dir: str | None = None,
                 long_side: int | None = 416, presence_samples: int = 16, pose_fps: float = 1.0,
                 on_samples: Callable | None = None, progress: Callable | None = None) -> list[SplitOutcome]:
    """Each task's clips (the CPU path's result shape, plus "reader"), in task order. With `cache_dir`, each kept
    clip's frames are stored for human_presence; `on_samples(task, samples)` sees them first (the bench)."""
    torch = _device_and_streams(device)
    used = "cuda" if torch is not None else "cpu"
    local = threading.local()
    done = [0]
    lock = threading.Lock()

    def one(k: int) -> SplitOutcome:
        task = tasks[k]
        try:
            if torch is not None and getattr(local, "stream", None) is None:
                local.stream = torch.cuda.Stream()
            stream = getattr(local, "stream", None)
            settings = PassSettings(threshold=27.0 if task.threshold is None else task.threshold,
                                    min_scene_len=task.min_scene_len, long_side=long_side)
            if stream is not None:
                with torch.cuda.stream(stream):
                    vpass = decode_pass(task.path, settings, used, stream)
            else:
                vpass = decode_pass(task.path, settings, used)
            result, samples = split_pass(task.video_id, vpass, task.min_length_s, task.max_length_s, task.window,
                                         task.max_clips, presence_samples, pose_fps)
            if stream is not None:
                stream.synchronize()  # the frames are complete before another thread's stream reads them
            if on_samples is not None:
                on_samples(task, vpass, samples)
            if cache_dir is not None and long_side is not None:
                for sample in samples:
                    if sample.frames is not None:
                        frames = sample.frames.cpu().numpy() if hasattr(sample.frames, "cpu") else sample.frames
                        write_clip_frames(cache_dir, task.path, sample.clip["start_s"], sample.clip["end_s"], long_side,
                                          sample.times, [vpass.times[i] for i in sample.frame_index], frames,
                                          vpass.cuts.width, vpass.cuts.height)
            outcome = SplitOutcome(k, task, True, value=result)
        except SceneDetectError as exc:
            outcome = SplitOutcome(k, task, False, error=exc.reason if hasattr(exc, "reason") else str(exc))
        except Exception as exc:  # one broken video never sinks the others
            outcome = SplitOutcome(k, task, False, error=f"{type(exc).__name__}: {exc}"[:300])
        if progress is not None:
            with lock:
                done[0] += 1
                progress(done[0], len(tasks))
        return outcome

    with ThreadPoolExecutor(max(1, threads)) as pool:
        return list(pool.map(one, range(len(tasks))))


def iter_passes(paths: list[str], fn: Callable, threads: int) -> Iterator:
    """`fn(path, stream)` over `paths` in `threads` threads, each with a CUDA stream of its own (the bench)."""
    import torch

    local = threading.local()

    def one(path):
        if getattr(local, "stream", None) is None:
            local.stream = torch.cuda.Stream()
        with torch.cuda.stream(local.stream):
            value = fn(path, local.stream)
        local.stream.synchronize()
        return value

    with ThreadPoolExecutor(max(1, threads)) as pool:
        yield from pool.map(one, paths)


def cached_reader(cache_dir: str):
    """human_presence's reader on the GPU path: the clips stage's cached frames, else the CPU reader. Not the NVDEC
    instants reader: fetching frames by index, it gave one long-GOP video (the slideshow) other frames when 12
    threads decoded it beside other files (bench/GPU_NOTES.md, issue 25), where the single pass stayed repeatable."""
    import functools

    from haic_resources.pose.clip_batch import read_cpu
    from haic_resources.video.frame_cache import cached_or_read

    return functools.partial(cached_or_read, cache_dir=cache_dir, fallback=read_cpu)
