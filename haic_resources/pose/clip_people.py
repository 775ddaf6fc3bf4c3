"""Decode once, decode little: one pass over a clip window yields the frames both samplings need.

The human-presence test looks at 16 uniformly spaced instants; the pose tracks at 1 per second.
Their union is decoded in one forward pass from the keyframe before the window, each frame
resized once to the model's input, and the model runs once on every decoded sample.

Decoding meets hostile media, so the stages run it in killable children: `PeopleTask` is one
clip's work as plain data and `sample_people` runs it there (``run_isolated(sample_people, tasks)``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import cv2
import numpy as np

from haic_core.accumulation.sampling import merge_timestamps, per_second_timestamps, uniform_timestamps
from haic_resources.video.frame_reader import index_of_times, read_frames_at, resized_size
from haic_resources.pose.estimator import Person, PoseEstimator
from haic_resources.pose.settings import PoseSettings, make_estimator


@dataclass(frozen=True)
class ClipPeople:
    times: list[float]             # every sampled instant (union of both samplings), sorted
    presence_index: list[int]      # positions of the 16 presence samples in `times`
    pose_index: list[int]          # positions of the 1 fps pose samples in `times`
    people: list[list[Person]]     # per sampled instant, in pixels of the resized frame
    width: int                     # resized frame size: what boxes and keypoints are measured in
    height: int
    frames_decoded: int
    # The sampled frames (RGB), only when asked for; possibly shrunk below width × height
    # (`PeopleTask.image_long_side`): people stay in width × height pixels, whatever their size.
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


@dataclass(frozen=True)
class PeopleTask:
    """One clip's `sample_clip_people` call as plain, picklable data, for `sample_people` in a child."""

    clip_id: str
    path: str
    start_s: float
    end_s: float
    pose: PoseSettings
    presence_samples: int = 16
    pose_fps: float = 1.0
    keep_images: bool = False              # frames are needed for contact sheets only
    image_long_side: int | None = None     # shrink kept frames to this long side (they travel back by pipe)
    only: tuple[float, ...] | None = None  # sample exactly these instants instead of both samplings


def sample_people(task: PeopleTask) -> ClipPeople:
    """Run `task` (meant for a child process): the model is built from the task's settings once per
    process, the clip is sampled, and kept frames are shrunk to `image_long_side`."""
    sample = sample_clip_people(task.path, task.start_s, task.end_s, make_estimator(task.pose),
                                presence_samples=task.presence_samples, pose_fps=task.pose_fps,
                                only=list(task.only) if task.only is not None else None,
                                keep_images=task.keep_images)
    if sample.images is None or task.image_long_side is None:
        return sample
    return dataclasses.replace(sample, images=[_shrunk(image, task.image_long_side) for image in sample.images])


def _shrunk(image: np.ndarray, long_side: int) -> np.ndarray:
    height, width = image.shape[:2]
    if max(width, height) <= long_side:
        return image  # never enlarged: a smaller frame is already cheap to send
    return cv2.resize(image, resized_size(width, height, long_side), interpolation=cv2.INTER_AREA)
