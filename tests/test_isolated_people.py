"""People sampling in killable children: the same people as in-process, and a clip that hangs the
decoder costs only its own item."""

from __future__ import annotations

import os

import numpy as np
import pytest

from haic_resources.pose.clip_people import PeopleTask, sample_clip_people, sample_people
from haic_resources.pose.contact_sheet import draw_people
from haic_resources.pose.estimator import Person
from haic_resources.pose.settings import PoseSettings, make_estimator
from haic_resources.video.isolation import run_isolated
from tests.timing import limit

pytestmark = pytest.mark.slow

WINDOW = (0.0, 10.29)  # the whole juggling clip: one person, 26 sampled instants


@pytest.fixture(scope="module")
def pose(tmp_path_factory) -> PoseSettings:
    return PoseSettings(cache_dir=str(tmp_path_factory.mktemp("models")))


def task(clip_id, path, pose, **options) -> PeopleTask:
    return PeopleTask(clip_id, str(path), *WINDOW, presence_samples=16, pose_fps=1.0, pose=pose, **options)


def assert_same_people(found, expected):
    assert (found.times, found.presence_index, found.pose_index) == (expected.times, expected.presence_index,
                                                                     expected.pose_index)
    assert (found.width, found.height, found.frames_decoded) == (expected.width, expected.height,
                                                                 expected.frames_decoded)
    assert [len(people) for people in found.people] == [len(people) for people in expected.people]
    for ours, theirs in zip(found.people, expected.people):
        for a, b in zip(ours, theirs):
            assert a.score == b.score
            assert np.array_equal(a.box, b.box) and np.array_equal(a.keypoints, b.keypoints)
            assert np.array_equal(a.keypoint_scores, b.keypoint_scores)


@pytest.mark.parametrize("reuse_workers", [False, True])
def test_isolated_people_equal_in_process_people_and_a_fifo_times_out(video, pose, tmp_path, reuse_workers):
    clip = video("sam2_juggle_1p.mp4")
    fifo = tmp_path / "never_written.mp4"
    os.mkfifo(fifo)  # opening it blocks forever: no writer will come
    tasks = [task("juggle", clip, pose), task("fifo", fifo, pose)]
    results = run_isolated(sample_people, tasks, workers=2, timeout_s=limit(10), reuse_workers=reuse_workers)
    expected = sample_clip_people(str(clip), *WINDOW, make_estimator(pose), presence_samples=16, pose_fps=1.0)
    assert results[0].ok, results[0].error
    assert sum(len(people) for people in results[0].value.people) > 0
    assert_same_people(results[0].value, expected)
    assert results[0].value.images is None
    assert not results[1].ok and "timed out" in results[1].error


def test_kept_images_are_shrunk_but_people_stay_in_model_pixels(video, pose):
    clip = video("sam2_juggle_1p.mp4")
    full = sample_people(task("juggle", clip, pose, keep_images=True))
    small = sample_people(task("juggle", clip, pose, keep_images=True, image_long_side=160))
    assert_same_people(small, full)
    # The default people model reads frames at long side 640 (the detector's tiles and MoveNet's crops come from it).
    assert (full.width, full.height) == (640, 360) and full.images[0].shape == (360, 640, 3)
    assert small.images[0].shape == (90, 160, 3) and len(small.images) == len(full.times)


def test_only_the_given_instants_are_sampled(video, pose):
    clip = video("sam2_juggle_1p.mp4")
    times = (0.5, 1.5, 2.5)
    found = sample_people(task("juggle", clip, pose, only=times, keep_images=True))
    expected = sample_clip_people(str(clip), *WINDOW, make_estimator(pose), only=list(times), keep_images=True)
    assert found.times == list(times) and found.presence_index == found.pose_index == []
    assert_same_people(found, expected)
    assert len(found.images) == 3


def test_people_measured_on_the_model_frame_are_drawn_where_they_stand_on_a_shrunk_image():
    person = Person(box=np.array([96.0, 54.0, 192.0, 108.0]), score=0.9, keypoints=np.zeros((17, 2)),
                    keypoint_scores=np.zeros(17))  # in a 384 x 216 frame
    drawn = draw_people(np.zeros((90, 160, 3), np.uint8), [person], scale=160 / 384)
    assert drawn[30, 40].any()        # the left edge, at 96 x 160/384 = 40
    assert not drawn[30, 96].any()    # not where the unscaled edge would be
