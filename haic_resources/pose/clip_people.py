"""Decode once, decode little: one pass over a clip window yields the frames both samplings need.

The human-presence test looks at 16 uniformly spaced instants; the pose tracks at 1 per second.
Their union is decoded in one forward pass from the keyframe before the window, each frame
resized once to the model's input, and the model runs once on every decoded sample.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from haic_core.accumulation.sampling import merge_timestamps, per_second_timestamps, uniform_timestamps
from haic_resources.video.frame_reader import index_of_times, read_frames_at
from haic_resources.pose.estimator import Person, PoseEstimator


@dataclass(frozen=True)
class ClipPeople:
    times: list[float]             # every sampled instant (union of both samplings), sorted
    presence_index: list[int]      # positions of the 16 presence samples in `times`
    pose_index: list[int]          # positions of the 1 fps pose samples in `times`
    people: list[list[Person]]     # per sampled instant, in pixels of the resized frame
    width: int                     # resized frame size: what boxes and keypoints are measured in
    height: int
    frames_decoded: int
    images: list[np.ndarray] | None = None


def sample_clip_people(path: str, start_s: float, end_s: float, estimator: PoseEstimator, *,
                       presence_samples: int = 16, pose_fps: float = 1.0,
                       only: list[float] | None = None, keep_images: bool = False) -> ClipPeople:
    presence_times = uniform_timestamps(start_s, end_s, presence_samples)
    pose_times = per_second_timestamps(start_s, end_s, pose_fps)
    times = only if only is not None else merge_timestamps(presence_times, pose_times)
    sample = read_frames_at(path, times, start_s, end_s, long_side=estimator.input_long_side)
    images = [f.image for f in sample.frames]
    people = estimator.estimate(images)
    height, width = images[0].shape[:2]
    return ClipPeople(
        times=list(times),
        presence_index=index_of_times(times, presence_times) if only is None else [],
        pose_index=index_of_times(times, pose_times) if only is None else [],
        people=people, width=width, height=height, frames_decoded=sample.frames_decoded,
        images=images if keep_images else None,
    )
