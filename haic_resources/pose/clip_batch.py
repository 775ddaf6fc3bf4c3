"""The human filters' sampling for many clips at once: the GPU step's shape.

Decoders decode each clip's samples (16 presence instants ∪ 1 fps pose instants, as
`sample_clip_people`) ahead of the models; every `clips_per_batch` decoded clips go through the
batched backend in one detector stack and one pose stack (`BatchedDetectorPose.estimate_clips`),
while the decoders go on with the next clips. One clip that fails to decode is an error for that
clip, never for the others.

Two ways to decode ahead:
- `decode_processes` > 0 (the stage's way): killable worker processes (`run_isolated`, a deadline per
  clip, workers reused), each with its own decoder (NVDEC: one GPU decoder per process, so several
  of the GPU's decode engines work at once and no decoder waits on the models' Python thread); the
  frames come back to the host, small (resized to the model's input), and outcomes come in the
  order the clips finish decoding;
- else `decode_threads` threads in this process, outcomes in input order (frames may stay on the
  GPU: the reader decides).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from haic_core.accumulation.sampling import merge_timestamps, per_second_timestamps, uniform_timestamps
from haic_resources.pose.clip_people import ClipPeople
from haic_resources.video.frame_reader import FrameSample, index_of_times, read_frames_at
from haic_resources.video.isolation import run_isolated

# (path, timestamps, start_s, end_s, long_side) -> frames
FrameReader = Callable[[str, list[float], float, float, int | None], FrameSample]


@dataclass(frozen=True)
class ClipWindow:
    clip_id: str
    path: str
    start_s: float
    end_s: float


@dataclass(frozen=True)
class ClipOutcome:
    clip_id: str
    people: ClipPeople | None  # None when the clip could not be sampled
    error: str | None = None


@dataclass(frozen=True)
class DecodeJob:
    """One clip's decoding as plain data for a worker process; `read` is a module-level function (or a
    `functools.partial` of one): it travels by name."""

    read: FrameReader
    path: str
    times: tuple[float, ...]
    start_s: float
    end_s: float
    long_side: int | None


def run_decode_job(job: DecodeJob) -> FrameSample:
    return job.read(job.path, list(job.times), job.start_s, job.end_s, job.long_side)


def read_cpu(path: str, times: list[float], start_s: float, end_s: float, long_side: int | None) -> FrameSample:
    """The CPU reader (PyAV) in the `FrameReader` shape."""
    return read_frames_at(path, times, start_s, end_s, long_side=long_side)


def clip_times(start_s: float, end_s: float, presence_samples: int = 16, pose_fps: float = 1.0):
    presence = uniform_timestamps(start_s, end_s, presence_samples)
    pose = per_second_timestamps(start_s, end_s, pose_fps)
    times = merge_timestamps(presence, pose)
    return times, index_of_times(times, presence), index_of_times(times, pose)


def _decoded_by_threads(clips, plans, read, long_side, threads, batch) -> Iterator[list[tuple[int, object]]]:
    """Batches of (clip index, FrameSample | error text) in input order, threads one batch ahead."""
    def decode(k: int) -> FrameSample:
        c = clips[k]
        return read(c.path, plans[k][0], c.start_s, c.end_s, long_side)

    with ThreadPoolExecutor(max(1, threads)) as pool:
        ahead: dict[int, Future] = {}
        next_submit = 0

        def top_up(limit: int) -> None:
            nonlocal next_submit
            while next_submit < len(clips) and next_submit < limit:
                ahead[next_submit] = pool.submit(decode, next_submit)
                next_submit += 1

        for start in range(0, len(clips), batch):
            top_up(start + 2 * batch)  # keep the decoders one batch ahead of the models
            out = []
            for k in range(start, min(start + batch, len(clips))):
                try:
                    out.append((k, ahead.pop(k).result()))
                except Exception as exc:  # one undecodable clip never sinks the others
                    out.append((k, f"{type(exc).__name__}: {exc}"))
            top_up(start + 3 * batch)
            yield out


def _decoded_by_processes(clips, plans, read, long_side, processes, batch, timeout_s,
                          idle_workers) -> Iterator[list[tuple[int, object]]]:
    """Batches of (clip index, FrameSample | error text) as the clips finish, from `run_isolated` in a
    background thread; it pauses when two batches wait for the models (bounded memory)."""
    jobs = [DecodeJob(read, c.path, tuple(plans[k][0]), c.start_s, c.end_s, long_side) for k, c in enumerate(clips)]
    cond, done, state = threading.Condition(), [], {"finished": False, "failure": None}

    def on_result(result) -> None:
        with cond:
            done.append((result.index, result.value if result.ok else result.error))
            cond.notify_all()
            while len(done) >= 2 * batch + processes and state["failure"] != "closed":
                cond.wait()

    def produce() -> None:
        try:
            run_isolated(run_decode_job, jobs, workers=processes, timeout_s=timeout_s, reuse_workers=True,
                         on_result=on_result, idle_workers=idle_workers)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            state["failure"] = exc
        with cond:
            state["finished"] = True
            cond.notify_all()

    thread = threading.Thread(target=produce, name="decode-workers", daemon=True)
    thread.start()
    taken = 0
    try:
        while taken < len(clips):
            with cond:
                cond.wait_for(lambda: len(done) >= batch or state["finished"])
                if isinstance(state["failure"], BaseException):
                    raise state["failure"]
                out, done[:] = done[:batch], done[batch:]
                cond.notify_all()
            taken += len(out)
            if out:
                yield out
    finally:
        with cond:
            if not state["finished"]:
                state["failure"] = "closed"  # the consumer left early: let the producer finish
            cond.notify_all()
        thread.join()


def sample_clips_batched(clips: list[ClipWindow], estimator, read: FrameReader = read_cpu, *, decode_threads: int = 8,
                         decode_processes: int = 0, timeout_s: float = 300.0, idle_workers: list | None = None,
                         clips_per_batch: int = 64, presence_samples: int = 16, pose_fps: float = 1.0,
                         keep_images: bool = False) -> Iterator[ClipOutcome]:
    """`ClipOutcome` per clip; `estimator` needs `estimate_clips` (the batched backend). With
    `decode_processes`, `read` must travel to a child (see `DecodeJob`) and `idle_workers` may keep the
    decoder processes for the next call (`isolation.close_workers`); `keep_images` keeps the frames
    (host arrays) in the outcome, for contact sheets."""
    plans = [clip_times(c.start_s, c.end_s, presence_samples, pose_fps) for c in clips]
    long_side = estimator.input_long_side
    if decode_processes > 0:
        batches = _decoded_by_processes(clips, plans, read, long_side, decode_processes, clips_per_batch, timeout_s,
                                        idle_workers)
    else:
        batches = _decoded_by_threads(clips, plans, read, long_side, decode_threads, clips_per_batch)
    for batch in batches:
        ok = [(k, sample) for k, sample in batch if isinstance(sample, FrameSample) and sample.frames]
        people = estimator.estimate_clips([[f.image for f in sample.frames] for _, sample in ok])
        by_clip = {k: (sample, found) for (k, sample), found in zip(ok, people)}
        for k, sample in batch:
            if k not in by_clip:
                yield ClipOutcome(clips[k].clip_id, None, sample if isinstance(sample, str) else "no frames decoded")
                continue
            sample, found = by_clip[k]
            times, presence_index, pose_index = plans[k]
            height, width = sample.frames[0].image.shape[:2]
            images = [_host(f.image) for f in sample.frames] if keep_images else None
            yield ClipOutcome(clips[k].clip_id, ClipPeople(
                times=list(times), presence_index=presence_index, pose_index=pose_index, people=found,
                width=width, height=height, frames_decoded=sample.frames_decoded, images=images))


def _host(image):
    return image.cpu().numpy() if hasattr(image, "cpu") else image
