"""Issue 25's two workloads, for `bench_issue25.py` (one device call, figures side by side).

(a) human filters on given clips (240 clips of ../shared/media): decode alone (NVDEC threads, our repeatable
    reader), models alone, end to end (decoder threads one batch ahead of the models + the filter chain), and
    the stage's CPU shape (CPU decoding in processes) for the ratio; every clip's verdict in every run.
(b) the whole GPU path from video to verdict on the WebVid-shaped set: one NVDEC pass per video (split +
    samples), the batched models, the filter chain; beside it the pass alone (decode + score, no models) and
    the CPU path (PyAV + PySceneDetect + the CPU reader + ONNX Runtime, in processes on every core).
"""

from __future__ import annotations

import functools
import importlib.util
import queue
import threading
import time
import traceback
from pathlib import Path

from bench_gpu_human_filters import Utilisation, verdict_row
from haic_resources.pose.clip_batch import ClipWindow, clip_times, read_cpu, sample_clips_batched
from haic_resources.pose.clip_people import ClipPeople, PeopleTask, sample_people
from haic_resources.pose.settings import PoseSettings
from haic_resources.video import nvdec_reader
from haic_resources.video.gpu_split import iter_passes
from haic_resources.video.isolation import close_workers, run_isolated
from haic_resources.video.scene_detect import SplitTask, split_into_clips
from haic_resources.video.single_pass import PassSettings, decode_pass, split_pass


HAVE_PYAV = importlib.util.find_spec("av") is not None


def _nvdec_host(path, times, start, end, side):
    return nvdec_reader.read_frames(path, times, start, end, side, on_gpu=True)[0]


def _rate(n: int, seconds: float) -> float:
    return round(n / seconds, 1)


def workload_a(clips: list[ClipWindow], models: dict, threads: int, processes: int, batch: int) -> dict:
    out: dict = {"clips": len(clips)}
    long_side = models[True].input_long_side
    decoded = []

    def decode_alone():
        from concurrent.futures import ThreadPoolExecutor

        def one(c):
            try:
                return _nvdec_host(c.path, clip_times(c.start_s, c.end_s)[0], c.start_s, c.end_s, long_side)
            except Exception:  # NVDEC refused it and no CPU reader here: counted, not timed
                return None
        with ThreadPoolExecutor(threads) as pool:
            return list(pool.map(one, clips))

    try:
        decode_alone()
        with Utilisation() as util:
            t0 = time.perf_counter()
            decoded = decode_alone()
            seconds = time.perf_counter() - t0
        failed = sum(s is None for s in decoded)
        decoded = [s for s in decoded if s is not None]
        out["decode_nvdec_threads"] = {"clips_per_s": _rate(len(decoded), seconds), "seconds": round(seconds, 2),
                                       "clips_failed": failed, "frames": sum(len(s.frames) for s in decoded),
                                       **util.summary()}
    except Exception:
        out["decode_nvdec_threads"] = {"failed": traceback.format_exc()[-1500:]}
    frames = [[f.image for f in s.frames] for s in decoded]
    for half, model in models.items():
        name = f"models_{'fp16' if half else 'fp32'}"
        try:
            def run():
                for s in range(0, len(frames), batch):
                    model.estimate_clips(frames[s:s + batch])
            run()
            with Utilisation() as util:
                t0 = time.perf_counter()
                run()
                seconds = time.perf_counter() - t0
            out[name] = {"clips_per_s": _rate(len(frames), seconds), "seconds": round(seconds, 2), **util.summary()}
        except Exception:
            out[name] = {"failed": traceback.format_exc()[-1500:]}
    decoded = frames = None  # free the frames before the end-to-end runs
    pool: list = []
    runs = [("end_to_end_fp16_nvdec_threads", True, _nvdec_host, 0), ("end_to_end_fp32_nvdec_threads", False, _nvdec_host, 0)]
    if HAVE_PYAV:  # the stage's CPU shape: PyAV in decoder processes
        runs.append(("end_to_end_fp32_cpu_processes", False, read_cpu, processes))
    verdicts: dict[str, dict] = {}
    for name, half, read, procs in runs:
        try:
            rows: dict = {}

            def run():
                rows.clear()
                for outcome in sample_clips_batched(clips, models[half], read, decode_threads=threads,
                                                    decode_processes=procs, idle_workers=pool, clips_per_batch=batch):
                    rows[outcome.clip_id] = (verdict_row(outcome.people, outcome.clip_id.split("#")[0])["final"]["verdict"]
                                             if outcome.people else "error")
            if procs:
                run_isolated(functools.partial(_warm), list(range(procs)), workers=procs, reuse_workers=True,
                             idle_workers=pool)
            with Utilisation() as util:
                t0 = time.perf_counter()
                run()
                seconds = time.perf_counter() - t0
            by_file: dict[str, set] = {}
            for clip_id, verdict in rows.items():
                by_file.setdefault(clip_id.split("#")[0], set()).add(verdict)
            verdicts[name] = {f: sorted(v) for f, v in by_file.items()}
            out[name] = {"clips_per_s": _rate(len(clips), seconds), "seconds": round(seconds, 2),
                         "kept": sum(v == "kept" for v in rows.values()), "errors": sum(v == "error" for v in rows.values()),
                         "files_with_two_verdicts": [f for f, v in by_file.items() if len(v) > 1], **util.summary()}
        except Exception:
            out[name] = {"failed": traceback.format_exc()[-1500:]}
    close_workers(pool)
    out["verdicts_per_file"] = verdicts
    return out


def _warm(_):
    return 0


def pass_scaling(videos: list[str], thread_counts=(4, 8, 16), batches=(32, 64)) -> dict:
    """The single pass alone (decode + score, no frames kept) in 4…16 threads and 32/64 frames a batch: frames/s."""
    out = {}
    for threads in thread_counts:
        for batch in batches:
            settings = PassSettings(long_side=None, batch=batch)
            try:
                cpu0, t0 = _cpu_seconds(), time.perf_counter()
                frames = sum(len(v.times) for v in iter_passes(videos, lambda p, s: decode_pass(p, settings, "cuda", s),
                                                                 threads))
                seconds = time.perf_counter() - t0
                out[f"threads_{threads}_batch_{batch}"] = {"frames_per_s": round(frames / seconds),
                                                           "cpu_cores_busy": round((_cpu_seconds() - cpu0) / seconds, 2)}
            except Exception:
                out[f"threads_{threads}_batch_{batch}"] = {"failed": traceback.format_exc()[-600:]}
    return out


def _gpu_video_path(videos: list[str], model, threads: int, batch: int, long_side: int, with_models: bool = True):
    """The whole GPU path: NVDEC single pass per video in threads, kept clips' samples to the models `batch`
    clips at a time, the filter chain per clip. Returns (rows per clip, frames decoded, pass count)."""
    ready: queue.Queue = queue.Queue(maxsize=4 * batch)
    rows, totals = {}, {"frames": 0, "clips": 0, "errors": 0}
    settings = PassSettings(long_side=long_side if with_models else None)

    def produce():
        def fn(path, stream):
            vpass = decode_pass(path, settings, "cuda", stream)
            result, samples = split_pass(Path(path).name, vpass, 5.0, 20.0, max_clips=10)
            return vpass, samples
        try:
            for k, got in enumerate(iter_passes(videos, fn, threads)):
                vpass, samples = got
                totals["frames"] += len(vpass.times)
                for s in samples:
                    ready.put((f"{Path(videos[k]).name}#{k}:{s.clip['start_s']:.2f}", s, vpass))
        except Exception:
            totals["errors"] += 1
            totals["failure"] = traceback.format_exc()[-1500:]
        ready.put(None)

    producer = threading.Thread(target=produce, daemon=True)
    producer.start()
    pending, finished = [], False
    while not finished:
        item = ready.get()
        if item is None:
            finished = True
        else:
            pending.append(item)
        if pending and (finished or len(pending) >= batch):
            if with_models:
                people = model.estimate_clips([[f for f in s.frames] for _, s, _ in pending])
                for (clip_id, s, vpass), found in zip(pending, people):
                    h, w = int(s.frames.shape[1]), int(s.frames.shape[2])
                    sample = ClipPeople(s.times, s.presence_index, s.pose_index, found, w, h, 0)
                    rows[clip_id] = verdict_row(sample, clip_id)["final"]["verdict"]
            totals["clips"] += len(pending)
            pending = []
    producer.join()
    return rows, totals


def _cpu_video_path(videos: list[str], workers: int, pose: PoseSettings, long_side: int):
    """The CPU path on every core: scene split in processes (PyAV + PySceneDetect), then each kept clip's people
    in processes (the CPU reader + ONNX Runtime), the filter chain here."""
    tasks = [SplitTask(video_id=f"{Path(p).name}#{k}", path=p, detector="content", threshold=None, min_scene_len=15,
                       frame_skip=0, downscale=None, min_length_s=5.0, max_length_s=20.0, decode_threads=1, max_clips=10)
             for k, p in enumerate(videos)]
    people_tasks, rows = [], {}
    for result in run_isolated(split_into_clips, tasks, workers=workers, timeout_s=600):
        if not result.ok:
            continue
        kept = {d.item_id for d in result.value["decisions"] if d.verdict == "kept"}
        for clip in result.value["clips"]:
            if clip["clip_id"] in kept:
                people_tasks.append(PeopleTask(f"{result.item.video_id}:{clip['start_s']:.2f}", result.item.path,
                                               clip["start_s"], clip["end_s"], pose))
    for result in run_isolated(sample_people, people_tasks, workers=workers, timeout_s=600, reuse_workers=True):
        rows[result.item.clip_id] = verdict_row(result.value, result.item.clip_id)["final"]["verdict"] \
            if result.ok else "error"
    return rows


def workload_b(videos: list[str], repeat: int, cpu_subset: int, models: dict, threads: int, workers: int, batch: int,
               models_dir: Path) -> dict:
    out: dict = {"unique_videos": len(videos), "videos": len(videos) * repeat}
    work = videos * repeat
    long_side = models[True].input_long_side
    _gpu_video_path(videos[:2], models[True], threads, batch, long_side)  # warm: decoders, shapes
    gpu_rows = {}
    for name, half, with_models in (("pass_alone_no_models", True, False), ("gpu_path_fp16", True, True),
                                    ("gpu_path_fp32", False, True)):
        try:
            with Utilisation() as util:
                cpu0 = _cpu_seconds()
                t0 = time.perf_counter()
                rows, totals = _gpu_video_path(work, models[half], threads, batch, long_side, with_models)
                seconds = time.perf_counter() - t0
                cpu_s = _cpu_seconds() - cpu0
            if with_models:
                gpu_rows[name] = rows
            out[name] = {"videos_per_s": _rate(len(work), seconds), "clips_per_s": _rate(totals["clips"], seconds),
                         "frames_decoded_per_s": round(totals["frames"] / seconds), "seconds": round(seconds, 2),
                         "cpu_core_s_per_video": round(cpu_s / len(work), 3),
                         "clips": totals["clips"], "kept": sum(v == "kept" for v in rows.values()),
                         "errors": totals["errors"], **{k: v for k, v in totals.items() if k == "failure"},
                         **util.summary()}
        except Exception:
            out[name] = {"failed": traceback.format_exc()[-1500:]}
    if not HAVE_PYAV:
        out["cpu_path_onnxruntime"] = {"skipped": "no PyAV on this machine in this call"}
        return out
    cpu_videos = (videos * (cpu_subset // len(videos) + 1))[:cpu_subset]
    pose = PoseSettings(cache_dir="/tmp/haic_models", backend="onnx", detector_model=str(models_dir / "yolox_nano.onnx"),
                        pose_model=str(models_dir / "rtmpose_t_random.onnx"), device="cpu", input_long_side=long_side)
    try:  # (no core-seconds here: the workers are not this process's children to wait for)
        t0 = time.perf_counter()
        cpu_rows = _cpu_video_path(cpu_videos, workers, pose, long_side)
        seconds = time.perf_counter() - t0
        out["cpu_path_onnxruntime"] = {"videos": len(cpu_videos), "workers": workers,
                                       "videos_per_s": _rate(len(cpu_videos), seconds), "clips": len(cpu_rows),
                                       "clips_per_s": _rate(len(cpu_rows), seconds), "seconds": round(seconds, 2),
                                       "kept": sum(v == "kept" for v in cpu_rows.values())}
        out["verdicts"] = _compare(gpu_rows, cpu_rows, len(videos))
    except Exception:
        out["cpu_path_onnxruntime"] = {"failed": traceback.format_exc()[-1500:]}
    return out


def _cpu_seconds() -> float:
    """User + system CPU seconds of this process and its finished children (the decoder/model workers)."""
    import os

    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _compare(gpu_rows: dict, cpu_rows: dict, unique: int) -> dict:
    """Per unique clip (video name + start), the GPU runs' verdicts and the CPU path's."""
    def key(clip_id):
        name, rest = clip_id.split("#", 1)
        return f"{name}:{rest.split(':', 1)[1]}"
    table: dict[str, dict] = {}
    for run, rows in gpu_rows.items():
        for clip_id, verdict in rows.items():
            table.setdefault(key(clip_id), {}).setdefault(run, set()).add(verdict)
    for clip_id, verdict in cpu_rows.items():
        table.setdefault(key(clip_id), {}).setdefault("cpu_path", set()).add(verdict)
    differing = {k: {r: sorted(v) for r, v in runs.items()} for k, runs in table.items()
                 if len({x for v in runs.values() for x in v}) > 1}
    return {"clips": len(table), "clips_with_differing_verdicts": differing}
