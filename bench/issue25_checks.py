"""Issue 25's correctness checks and the NVDEC limit, for `bench_issue25.py` (one device call).

- `repeatability`: the same clips decoded alone (1 thread) and in `threads` threads, each file several times,
  by each GPU decoder candidate: how many distinct frame sets each file gets (1 = repeatable), and the largest
  difference from the one-thread frames;
- `nvdec_equals_cpu`: the single pass on NVDEC (torch, GPU) against the same pass on PyAV's frames (numpy,
  CPU): scores and kept frames byte for byte; and the instants reader's frames against the CPU reader's;
- `cuts_against_detect`: the single pass's cuts on the GPU against `scenedetect.detect()` on every video;
- `nvdec_limit`: frames/s of NVDEC alone (demux + decode, no copy) with 1…N decoder threads per size.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import threading
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from haic_resources.pose.clip_batch import clip_times
from haic_resources.video import nvdec_reader
from haic_resources.video.single_pass import PassSettings, decode_pass


def _digest(arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


def _rgb_output_reader():
    """PyNvVideoCodec's own RGB output (its NV12→RGB kernel), frames fetched by index: the run-6 reader."""
    import PyNvVideoCodec as nvc  # noqa: N813
    import torch

    local = threading.local()

    def read(path, times, long_side):
        decoder = nvc.SimpleDecoder(path, gpu_id=0, use_device_memory=True, output_color_type=nvc.OutputColorType.RGB)
        fps = float(decoder.get_stream_metadata().average_fps)
        index = sorted({min(max(int(round(t * fps)), 0), len(decoder) - 1) for t in times})
        frames = decoder.get_batch_frames_by_index(index)
        local.keep = decoder
        return [torch.from_dlpack(f).cpu().numpy() for f in frames]

    return read


def repeatability(clips, threads: int, repeats: int, long_side: int = 416) -> dict:
    """Per candidate: distinct frame sets per file over `repeats` decodes of each of `clips` in `threads` threads,
    against one thread's."""
    out = {}

    def ours(c):
        sample, used = nvdec_reader.read_frames(c.path, clip_times(c.start_s, c.end_s)[0], c.start_s, c.end_s, long_side)
        return used, [f.image for f in sample.frames]

    theirs_read = _rgb_output_reader()

    def theirs(c):
        return "nvdec", theirs_read(c.path, clip_times(c.start_s, c.end_s)[0], long_side)

    def single(c):
        vpass = decode_pass(c.path, PassSettings(long_side=long_side), "cuda")
        return vpass.reader, [np.asarray(vpass.scores), vpass.kept_frames.cpu().numpy()]

    def safe(fn):
        def call(c):
            try:
                return fn(c)
            except Exception as exc:  # a file NVDEC refuses, with no CPU reader here
                return f"error: {type(exc).__name__}: {exc}"[:200], []
        return call

    for name, fn in (("nvdec_nv12_own_conversion", safe(ours)), ("nvdec_rgb_pynvvideocodec", safe(theirs)),
                     ("single_pass_nv12", safe(single))):
        try:
            reference = {c.path: fn(c) for c in clips}
            work = [c for c in clips for _ in range(repeats)]
            with ThreadPoolExecutor(threads) as pool:
                got = list(pool.map(lambda c: (c.path, fn(c)), work))
            per_file: dict[str, dict] = {}
            for path, (used, arrays) in got:
                entry = per_file.setdefault(Path(path).name, {"reader": used, "sets": set(), "max_abs": 0})
                entry["sets"].add(_digest(arrays))
                ref = reference[path][1]
                for a, b in zip(arrays, ref):
                    entry["max_abs"] = max(entry["max_abs"], float(np.max(np.abs(np.asarray(a, np.float64) - b))))
                entry["same_as_one_thread"] = entry.get("same_as_one_thread", True) and \
                    _digest(arrays) == _digest(reference[path][1])
            out[name] = {"files": len(per_file), "threads": threads, "repeats": repeats,
                         "repeatable_files": sum(len(e["sets"]) == 1 and e["same_as_one_thread"] for e in per_file.values()),
                         "per_file": {k: {"reader": e["reader"], "distinct_frame_sets": len(e["sets"]),
                                          "max_abs_vs_one_thread": e["max_abs"]} for k, e in per_file.items()}}
        except Exception:
            out[name] = {"failed": traceback.format_exc()[-1500:]}
    return out


def _cpu_pass(path: str, long_side: int):
    vpass = decode_pass(path, PassSettings(long_side=long_side), "cpu")
    return vpass.times, vpass.scores, vpass.kept_frames, list(vpass.cuts.cut_frames)


def nvdec_equals_cpu(paths: list[str], clips, long_side: int = 416, workers: int = 16) -> dict:
    """Single pass: NVDEC + torch vs PyAV + numpy (in processes), byte for byte. Instants reader: ours vs the CPU
    reader."""
    from haic_resources.video.frame_reader import read_frames_at

    videos = {}
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        cpu_passes = {p: pool.submit(_cpu_pass, p, long_side) for p in paths}
        for path in paths:
            try:
                gpu = decode_pass(path, PassSettings(long_side=long_side), "cuda")
                times, scores, frames, cuts = cpu_passes[path].result()
                same_frames = gpu.kept_frames is not None and frames is not None and \
                    np.array_equal(gpu.kept_frames.cpu().numpy(), frames)
                videos[Path(path).name] = {"gpu_reader": gpu.reader, "frames": len(gpu.times), "cpu_frames": len(times),
                                           "scores_equal": gpu.scores == scores, "kept_frames_equal": bool(same_frames),
                                           "times_equal": gpu.times == times, "cuts_gpu": list(gpu.cuts.cut_frames),
                                           "cuts_cpu": cuts}
            except Exception as exc:
                videos[Path(path).name] = {"failed": f"{type(exc).__name__}: {exc}"[:400]}
    readers = {}
    for c in clips:
        try:
            times = clip_times(c.start_s, c.end_s)[0]
            ours, used = nvdec_reader.read_frames(c.path, times, c.start_s, c.end_s, long_side)
            ref = read_frames_at(c.path, times, c.start_s, c.end_s, long_side=long_side)
            diff = np.abs(np.stack([f.image for f in ours.frames]).astype(np.int16)
                          - np.stack([f.image for f in ref.frames]).astype(np.int16))
            same_instants = [round(a.pts_s, 4) == round(b.pts_s, 4) for a, b in zip(ours.frames, ref.frames)]
            readers[Path(c.path).name] = {"reader": used, "mean_abs": round(float(diff.mean()), 3),
                                          "p99_abs": float(np.percentile(diff, 99)), "max_abs": int(diff.max()),
                                          "same_frame_chosen": f"{sum(same_instants)}/{len(same_instants)}"}
        except Exception as exc:
            readers[Path(c.path).name] = {"failed": f"{type(exc).__name__}: {exc}"[:400]}
    return {"single_pass": videos, "instants_reader_vs_cpu_reader": readers}


def _detect_cuts(path: str) -> tuple[list[int], list[float]]:
    from scenedetect import ContentDetector, detect

    scenes = detect(path, ContentDetector())
    return [s[0].frame_num for s in scenes[1:]], [round(float(s[0].seconds), 4) for s in scenes[1:]]


def cuts_against_detect(paths: list[str], workers: int = 16) -> dict:
    """For every video: the single pass's cut frames (GPU) and `scenedetect.detect()`'s (OpenCV, CPU processes)."""
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        reference = dict(zip(paths, pool.map(_detect_cuts, paths)))
    rows, worst, unmatched = {}, 0, 0
    for path in paths:
        try:
            vpass = decode_pass(path, PassSettings(long_side=None), "cuda")
            ours, theirs = list(vpass.cuts.cut_frames), reference[path][0]
            pairs = [min((abs(a - b) for b in theirs), default=None) for a in ours]
            missing = [b for b in theirs if all(abs(a - b) > 1 for a in ours)]
            extra = [a for a, d in zip(ours, pairs) if d is None or d > 1]
            worst = max([worst] + [d for d in pairs if d is not None and d <= 1])
            unmatched += len(missing) + len(extra)
            rows[Path(path).name] = {"reader": vpass.reader, "gpu": ours, "detect": theirs, "missing": missing,
                                     "extra": extra}
        except Exception as exc:
            rows[Path(path).name] = {"failed": f"{type(exc).__name__}: {exc}"[:400]}
            unmatched += 1
    return {"videos": len(paths), "cuts_not_within_one_frame": unmatched, "largest_offset_frames": worst,
            "per_video": rows}


def _decode_only(path: str, seconds: float) -> int:
    """Frames NVDEC decodes from `path` (again and again) in about `seconds`, no copy: the engines' rate."""
    import PyNvVideoCodec as nvc  # noqa: N813

    frames, end = 0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        demuxer = nvc.CreateDemuxer(filename=path)
        decoder = nvc.CreateDecoder(gpuid=0, codec=demuxer.GetNvCodecId(), cudacontext=0, cudastream=0,
                                    usedevicememory=True)
        for packet in demuxer:
            frames += len(decoder.Decode(packet))
    return frames


def nvdec_limit(files: dict[str, str], decoders=(1, 2, 4, 8, 16), seconds: float = 3.0) -> dict:
    """frames/s of NVDEC with 1…N decoder threads on each size's file (demux + decode only)."""
    table = {}
    for label, path in files.items():
        row = {}
        for n in decoders:
            try:
                _decode_only(path, 0.2)  # warm
                t0 = time.perf_counter()
                with ThreadPoolExecutor(n) as pool:
                    counts = list(pool.map(lambda _: _decode_only(path, seconds), range(n)))
                row[n] = round(sum(counts) / (time.perf_counter() - t0))
            except Exception as exc:
                row[n] = f"{type(exc).__name__}: {exc}"[:200]
        table[label] = row
    return table


def torchcodec_probe(paths: list[str], threads: int = 8) -> dict:
    """torchcodec's CUDA decoder, if it imports here: frames/s over `paths` and whether repeats give one frame
    set. PyPI's torchcodec builds for torch 2.11 (0.11.x) have no CUDA; 0.17.0 has, for a later torch."""
    try:
        from torchcodec.decoders import VideoDecoder
    except Exception as exc:
        return {"imported": False, "error": f"{type(exc).__name__}: {exc}"[:600]}

    def decode(path):
        frames = VideoDecoder(path, device="cuda").get_frames_in_range(0, 64).data
        return _digest([frames.cpu().numpy()]), int(frames.shape[0])

    try:
        one = {p: decode(p) for p in paths}
        t0 = time.perf_counter()
        with ThreadPoolExecutor(threads) as pool:
            many = list(pool.map(lambda p: (p, decode(p)), paths * 4))
        seconds = time.perf_counter() - t0
        return {"imported": True, "frames_per_s": round(sum(n for _, (_, n) in many) / seconds),
                "repeatable": all(d == one[p][0] for p, (d, _) in many)}
    except Exception as exc:
        return {"imported": True, "error": f"{type(exc).__name__}: {exc}"[:600]}


def cpu_count() -> int:
    return len(os.sched_getaffinity(0))
