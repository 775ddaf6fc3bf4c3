"""Presence + 1 fps pose on a GPU over ≥ 200 clips of 5–20 s: end to end, decode alone, models alone.

The real clips of ../shared/media whose judged window lasts 5–20 s, repeated to `--clips`. Each
clip's samples are the 16 presence instants ∪ the 1 fps pose instants (as the stages take them).
Measured in one run, each the best of `--repeats`:
- decode alone: NVDEC (PyNvVideoCodec) with `--threads` decoder threads, frames resized on the GPU
  to the detector's long side and copied to the host; the same with OpenCV's CPU decoder (the
  device has no PyAV) as the CPU reference;
- models alone: the batched backend (YOLOX-nano + RTMPose-t, onnx2torch) on the frames decoded
  above, `--clips-per-batch` clips per network call, fp32 and fp16;
- decode alone with `--processes` decoder processes (NVDEC, one decoder per process, frames to the
  host), their start-up apart; models alone fp16 on those host frames (pinned-memory upload);
- end to end: `sample_clips_batched` (decoder threads, or decoder processes, ahead of the models) + the
  human-filter chain (presence, tracklets, motion) per clip;
`--quick` keeps only the decoder-process rows in fp16 (for a short lease).
GPU and NVDEC utilisation are sampled through NVML every 50 ms during each phase. Then the verdicts on the
unique clips from the GPU path (NVDEC + torch) and from the CPU networks on the same frames (ONNX
Runtime), written per clip. Writes `--out` (JSON).

    python bench/bench_gpu_human_filters.py --media ../shared/media --models ../shared/models --out gpu.json
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import threading
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))  # cv2_reader, importable by decoder processes too

import numpy as np  # noqa: E402

from haic_resources.pose.batched import BatchedDetectorPose  # noqa: E402
from haic_resources.pose.clip_batch import ClipWindow, clip_times, sample_clips_batched  # noqa: E402
from haic_resources.pose.clip_people import ClipPeople  # noqa: E402
from bench.measure import best_of  # noqa: E402
from cv2_reader import cv2_read  # noqa: E402
from haic_resources.pose.clip_batch import DecodeJob, run_decode_job  # noqa: E402
from haic_resources.video.isolation import close_workers, run_isolated  # noqa: E402
from tests.human_filter_chain import clip_window, human_filter_chain  # noqa: E402


class Utilisation:
    """Mean and max GPU utilisation (NVML, %) while the block runs."""

    def __enter__(self):
        self.samples, self._stop = [], threading.Event()
        try:
            import pynvml
            pynvml.nvmlInit()
            handle = pynvml.nvmlDeviceGetHandleByIndex(0)
            read = lambda: (pynvml.nvmlDeviceGetUtilizationRates(handle).gpu,  # noqa: E731
                            pynvml.nvmlDeviceGetDecoderUtilization(handle)[0])
        except Exception:
            read = None
        def loop():
            while read and not self._stop.wait(0.05):
                self.samples.append(read())
        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def summary(self) -> dict:
        if not self.samples:
            return {"gpu_util_mean": None}
        gpu, dec = np.array(self.samples).T
        return {"gpu_util_mean": round(float(gpu.mean()), 1), "gpu_util_max": int(gpu.max()),
                "nvdec_util_mean": round(float(dec.mean()), 1), "nvdec_util_max": int(dec.max())}


def clip_list(media: Path, total: int) -> tuple[list[ClipWindow], list[str]]:
    manifest = json.loads((media / "manifest.json").read_text())
    names = []
    for entry in manifest["videos"]:
        name = Path(entry["file"]).name
        start, end = clip_window(media, name)
        if 5.0 <= end - start <= 20.0 and (media / "videos" / name).is_file():  # a carried subset may lack some
            names.append(name)
    clips = [ClipWindow(f"{names[k % len(names)]}#{k}", str(media / "videos" / names[k % len(names)]),
                        *clip_window(media, names[k % len(names)])) for k in range(total)]
    return clips, names


def decode_all(clips, read, threads, long_side):
    from concurrent.futures import ThreadPoolExecutor
    def one(c):
        try:
            return read(c.path, clip_times(c.start_s, c.end_s)[0], c.start_s, c.end_s, long_side)
        except Exception as exc:
            return exc
    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(one, clips))


def verdict_row(outcome_people: ClipPeople, clip_id: str) -> dict:
    chain = human_filter_chain(outcome_people, clip_id)
    row = {}
    for step in ("presence", "motion", "final"):
        d = chain[step]
        row[step] = {"verdict": d.verdict, "reason": d.reason, "value": d.value}
    row["people_per_frame"] = [len(p) for p in outcome_people.people]
    return row


def verdict_differences(per_clip: dict[str, dict[str, dict]], phase: str) -> list[dict]:
    """Clips of `phase` whose final verdict differs from another repeat of the same clip in the same run, or
    from the same clip in the first run measured: each with both rows (values, reasons), so a verdict that
    moved with its batch shows what moved."""
    rows, first_phase = per_clip[phase], next(iter(per_clip))
    by_name: dict[str, dict[str, list]] = {}
    for clip_id, row in rows.items():
        by_name.setdefault(clip_id.split("#")[0], {}).setdefault(row["final"]["verdict"], []).append(clip_id)
    found = []
    for name, verdicts in by_name.items():
        if len(verdicts) > 1:
            found.append({"clip": name, "within_run": {v: ids[:3] for v, ids in verdicts.items()},
                          "rows": {ids[0]: rows[ids[0]] for ids in verdicts.values()}})
    for clip_id, row in rows.items():
        other = per_clip[first_phase].get(clip_id)
        if other is not None and other["final"]["verdict"] != row["final"]["verdict"]:
            found.append({"clip": clip_id, "against": first_phase, "this": row, "first": other})
    return found[:20]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--media", type=Path, required=True)
    ap.add_argument("--models", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--clips", type=int, default=240)
    ap.add_argument("--threads", type=int, default=12)
    ap.add_argument("--clips-per-batch", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--processes", default="4,8,12", help="decoder process counts to measure")
    ap.add_argument("--process-readers", default="nvdec,cpu",
                    help="what each decoder process reads with: nvdec (one NVDEC decoder and CUDA context per "
                         "process) and/or cpu (OpenCV, no CUDA)")
    ap.add_argument("--quick", action="store_true",
                    help="fp16 and decoder processes only: no verdicts, no thread/OpenCV decoders, no fp32 (a short lease)")
    ap.add_argument("--skip-verdicts", action="store_true", help="only the timings (the verdict comparison "
                    "runs every clip through five paths first)")
    ap.add_argument("--cpu-reference", action="store_true",
                    help="only the verdicts of the CPU path (PyAV reader + ONNX Runtime), for comparison")
    args = ap.parse_args()
    if args.cpu_reference:
        from haic_resources.video.frame_reader import read_frames_at
        clips, names = clip_list(args.media, 0)
        unique = clip_list(args.media, len(names))[0]
        model = BatchedDetectorPose(args.models / "yolox_nano.onnx", args.models / "rtmpose_t_random.onnx",
                                    device="cpu", engine="onnxruntime", threads=2)
        read = lambda path, times, start, end, side: read_frames_at(path, times, start, end, long_side=side)  # noqa: E731
        rows = {o.clip_id.split("#")[0]: {"cpu_pyav_onnxruntime": verdict_row(o.people, o.clip_id.split("#")[0])}
                for o in sample_clips_batched(unique, model, read, decode_threads=2)}
        args.out.write_text(json.dumps({"verdicts": rows}, indent=1, default=str))
        return
    import torch
    from haic_resources.video import nvdec_reader

    out: dict = {"torch": torch.__version__, "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}
    clips, names = clip_list(args.media, args.clips)
    out.update(clips=len(clips), unique_clips=names, threads=args.threads, clips_per_batch=args.clips_per_batch)
    det, pose = args.models / "yolox_nano.onnx", args.models / "rtmpose_t_random.onnx"

    def save():
        args.out.write_text(json.dumps(out, indent=1, default=str))

    t0 = time.perf_counter()
    models = {half: BatchedDetectorPose(det, pose, device="cuda", engine="torch", half=half) for half in ((True,) if args.quick else (False, True))}
    out["model_load_s"] = round(time.perf_counter() - t0, 2)
    out["device_used"] = models[True].device_used
    long_side = models[True].input_long_side
    gpu_frames: dict = {}

    def nvdec(path, times, start, end, side):  # frames stay on the GPU; OpenCV when NVDEC cannot (no PyAV here)
        sample, used = nvdec_reader.read_frames(path, times, start, end, side, on_gpu=True, fallback=cv2_read)
        gpu_frames[path] = used
        return sample

    # Verdicts on the unique clips first: GPU networks vs CPU networks (ONNX Runtime) on the same frames.
    try:
        if args.quick or args.skip_verdicts:
            raise NotImplementedError("not run with --quick or --skip-verdicts")
        unique = clips[:len(names)]
        cpu_model = BatchedDetectorPose(det, pose, device="cpu", engine="onnxruntime", threads=16)
        rows = {}
        host_read = functools.partial(nvdec_reader.read_frames_host, fallback=cv2_read)
        for label, model, read, procs in (("gpu_nvdec_torch_fp32", models[False], nvdec, 0),
                                          ("gpu_nvdec_torch_fp16", models[True], nvdec, 0),
                                          ("gpu_nvdec_processes_torch_fp16", models[True], host_read, 4),
                                          ("gpu_opencv_torch_fp32", models[False], cv2_read, 0),
                                          ("cpu_opencv_onnxruntime", cpu_model, cv2_read, 0)):
            for outcome in sample_clips_batched(unique, model, read, decode_threads=args.threads,
                                                decode_processes=procs):
                name = outcome.clip_id.split("#")[0]
                rows.setdefault(name, {})[label] = (verdict_row(outcome.people, name) if outcome.people
                                                    else {"error": outcome.error})
        out["verdicts"] = rows
    except Exception:
        out["verdicts_failed"] = traceback.format_exc()[-2000:]
    print("verdicts", "failed" if "verdicts_failed" in out else "done", flush=True)
    save()

    phases = {} if args.quick else {"decode_nvdec": nvdec, "decode_cpu_opencv": cv2_read}
    decoded = None
    for phase, read in phases.items():
        try:
            decode_all(clips[:8], read, args.threads, long_side)  # warm-up: decoders, CUDA context
            with Utilisation() as util:
                seconds, results = best_of(args.repeats, lambda: decode_all(clips, read, args.threads, long_side))
            errors = [str(r) for r in results if isinstance(r, Exception)]
            out[phase] = {"seconds": round(seconds, 3), "clips_per_s": round(len(clips) / seconds, 1),
                          "frames": sum(len(r.frames) for r in results if not isinstance(r, Exception)),
                          "errors": errors[:5], "n_errors": len(errors), **util.summary()}
            if phase == "decode_nvdec":
                out[phase]["reader_per_file"] = {Path(p).name: used for p, used in gpu_frames.items()}
            if decoded is None and not errors:
                decoded = results
        except Exception:
            out[phase] = {"failed": traceback.format_exc()[-2000:]}
        print(phase, out[phase] if "failed" not in out[phase] else out[phase]["failed"][-500:], flush=True)
        save()
    # Decode alone with decoder processes (run_isolated workers, kept between calls), frames to the host.
    # Each process reads with NVDEC (a CUDA context of its own) or with the CPU decoder (no CUDA).
    host_read = functools.partial(nvdec_reader.read_frames_host, fallback=cv2_read)
    process_readers = {"nvdec": host_read, "cpu": cv2_read}
    pools: dict[tuple[str, int], list] = {}
    host_decoded = None
    for procs, reader in [(int(p), r) for p in args.processes.split(",") if p
                          for r in args.process_readers.split(",") if r]:
        phase = f"decode_{reader}_processes_{procs}"
        pools[reader, procs] = []
        pool, read = pools[reader, procs], process_readers[reader]
        try:
            def run():
                jobs = [DecodeJob(read, c.path, tuple(clip_times(c.start_s, c.end_s)[0]), c.start_s, c.end_s,
                                  long_side) for c in clips]
                return run_isolated(run_decode_job, jobs, workers=procs, reuse_workers=True, idle_workers=pool)
            t0 = time.perf_counter()
            run_isolated(run_decode_job, [DecodeJob(read, c.path, tuple(clip_times(c.start_s, c.end_s)[0]),
                                                    c.start_s, c.end_s, long_side) for c in clips[:2 * procs]],
                         workers=procs, reuse_workers=True, idle_workers=pool)  # start the workers
            start_s = time.perf_counter() - t0
            with Utilisation() as util:
                seconds, results = best_of(args.repeats, run)
            errors = [r.error for r in results if not r.ok]
            out[phase] = {"seconds": round(seconds, 3), "clips_per_s": round(len(clips) / seconds, 1),
                          "workers_start_s": round(start_s, 2), "errors": errors[:5], "n_errors": len(errors),
                          **util.summary()}
            if host_decoded is None and not errors:
                host_decoded = [r.value for r in results]
        except Exception:
            out[phase] = {"failed": traceback.format_exc()[-2000:]}
        print(phase, out[phase], flush=True)
        save()

    inputs = []
    if not args.quick:
        if decoded is None:
            decoded = decode_all(clips, cv2_read, args.threads, long_side)
        frames = [[f.image for f in r.frames] for r in decoded if not isinstance(r, Exception)]
        inputs = [(half, model, frames, "") for half, model in models.items()]
    if host_decoded is not None:  # frames from the decoder processes: on the host, uploaded through pinned memory
        inputs.append((True, models[True], [[f.image for f in r.frames] for r in host_decoded], "_host_frames"))

    for half, model, frames, suffix in inputs:
        phase = f"models_{'fp16' if half else 'fp32'}{suffix}"
        try:
            def run():
                found = 0
                for s in range(0, len(frames), args.clips_per_batch):
                    found += sum(len(p) for clip in model.estimate_clips(frames[s:s + args.clips_per_batch]) for p in clip)
                return found
            run()  # warm-up: cuDNN algorithm choice for each batch shape
            with Utilisation() as util:
                seconds, people = best_of(args.repeats, run)
            n_frames = sum(len(f) for f in frames)
            out[phase] = {"seconds": round(seconds, 3), "clips_per_s": round(len(frames) / seconds, 1),
                          "frames_per_s": round(n_frames / seconds), "people_crops": people,
                          "crops_per_s": round(people / seconds), **util.summary()}
        except Exception:
            out[phase] = {"failed": traceback.format_exc()[-2000:]}
        print(phase, out[phase], flush=True)
        save()

    # (fp16, decoder processes, NVDEC on streams of its own, process reader, filter chain, clips per batch)
    runs = [(True, procs, True, reader, True, args.clips_per_batch) for reader, procs in pools]
    if not args.quick:  # the threads' decoders on streams of their own, and on the default stream (before);
        # then what bounds end to end: without the filter chain (sampling alone), and half the batch
        half_batch = max(1, args.clips_per_batch // 2)
        runs = [(False, 0, True, "nvdec", True, args.clips_per_batch), (True, 0, True, "nvdec", True, args.clips_per_batch),
                (True, 0, False, "nvdec", True, args.clips_per_batch), (True, 0, False, "nvdec", False, args.clips_per_batch),
                (True, 0, False, "nvdec", True, half_batch)] + runs + (
            [(False, procs, True, reader, True, args.clips_per_batch) for reader, procs in pools
             if procs == max(p for _, p in pools)])
    per_clip: dict[str, dict[str, dict]] = {}
    for half, procs, own_streams, reader, filters, per_batch in runs:
        phase = f"end_to_end_{'fp16' if half else 'fp32'}" + (
            f"_{reader}_processes_{procs}" if procs else "_threads") + ("" if own_streams else "_default_stream") + (
            "" if filters else "_no_filter_chain") + ("" if per_batch == args.clips_per_batch else f"_batch_{per_batch}")
        os.environ["HAIC_NVDEC_OWN_STREAMS"] = "1" if own_streams else "0"
        nvdec_reader._readers.clear()  # readers read the setting when made
        model = models[half]
        try:
            rows: dict[str, dict] = {}

            def run():
                kept = errors = 0
                rows.clear()
                for outcome in sample_clips_batched(clips, model, process_readers[reader] if procs else nvdec,
                                                    decode_threads=args.threads, decode_processes=procs,
                                                    idle_workers=pools.get((reader, procs)),
                                                    clips_per_batch=per_batch):
                    if outcome.people is None:
                        errors += 1
                        continue
                    if filters:
                        rows[outcome.clip_id] = row = verdict_row(outcome.people, outcome.clip_id.split("#")[0])
                        kept += row["final"]["verdict"] == "kept"
                return kept, errors
            with Utilisation() as util:
                seconds, (kept, errors) = best_of(args.repeats, run)
            out[phase] = {"seconds": round(seconds, 3), "clips_per_s": round(len(clips) / seconds, 1),
                          "kept": kept, "errors": errors, **util.summary()}
            if rows:  # repeats of one clip whose verdict differs from this run's reference, or from the first run's
                per_clip[phase] = dict(rows)
                out[phase]["verdict_differences"] = verdict_differences(per_clip, phase)
        except Exception:
            out[phase] = {"failed": traceback.format_exc()[-2000:]}
        print(phase, out[phase], flush=True)
        save()
    for pool in pools.values():
        close_workers(pool)

    save()
    print(json.dumps({k: v for k, v in out.items() if k != "verdicts"}, default=str)[:6000])


if __name__ == "__main__":
    main()
