"""The human filters' sampling for many clips at once: the GPU step's shape.

Decoder threads decode each clip's samples (16 presence instants ∪ 1 fps pose instants, as
`sample_clip_people`) ahead of the models; every `clips_per_batch` decoded clips go through the
batched backend in one detector stack and one pose stack (`BatchedDetectorPose.estimate_clips`),
while the threads decode the next clips. One clip that fails to decode is an error for that clip,
never for the others.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from haic_core.accumulation.sampling import merge_timestamps, per_second_timestamps, uniform_timestamps
from haic_resources.pose.clip_people import ClipPeople
from haic_resources.video.frame_reader import FrameSample, index_of_times

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


def clip_times(start_s: float, end_s: float, presence_samples: int = 16, pose_fps: float = 1.0):
    presence = uniform_timestamps(start_s, end_s, presence_samples)
    pose = per_second_timestamps(start_s, end_s, pose_fps)
    times = merge_timestamps(presence, pose)
    return times, index_of_times(times, presence), index_of_times(times, pose)


def sample_clips_batched(clips: list[ClipWindow], estimator, read: FrameReader, *, decode_threads: int = 8,
                         clips_per_batch: int = 64, presence_samples: int = 16,
                         pose_fps: float = 1.0) -> Iterator[ClipOutcome]:
    """`ClipOutcome` per clip, in order; `estimator` needs `estimate_clips` (the batched backend)."""
    plans = [clip_times(c.start_s, c.end_s, presence_samples, pose_fps) for c in clips]

    def decode(k: int) -> FrameSample:
        c = clips[k]
        return read(c.path, plans[k][0], c.start_s, c.end_s, estimator.input_long_side)

    with ThreadPoolExecutor(max(1, decode_threads)) as pool:
        ahead: dict[int, Future] = {}
        next_submit = 0

        def top_up(limit: int) -> None:
            nonlocal next_submit
            while next_submit < len(clips) and next_submit < limit:
                ahead[next_submit] = pool.submit(decode, next_submit)
                next_submit += 1

        for start in range(0, len(clips), clips_per_batch):
            top_up(start + 2 * clips_per_batch)  # keep the decoders one batch ahead of the models
            batch = list(range(start, min(start + clips_per_batch, len(clips))))
            decoded, failed = {}, {}
            for k in batch:
                try:
                    decoded[k] = ahead.pop(k).result()
                except Exception as exc:  # one undecodable clip never sinks the others
                    failed[k] = f"{type(exc).__name__}: {exc}"
            top_up(start + 2 * clips_per_batch + len(batch))
            ok = [k for k in batch if k in decoded]
            people = estimator.estimate_clips([[f.image for f in decoded[k].frames] for k in ok])
            by_clip = dict(zip(ok, people))
            for k in batch:
                if k in failed:
                    yield ClipOutcome(clips[k].clip_id, None, failed[k])
                    continue
                times, presence_index, pose_index = plans[k]
                height, width = decoded[k].frames[0].image.shape[:2]
                yield ClipOutcome(clips[k].clip_id, ClipPeople(
                    times=list(times), presence_index=presence_index, pose_index=pose_index, people=by_clip[k],
                    width=width, height=height, frames_decoded=decoded[k].frames_decoded))
