"""Sampling times (16 uniform, 1 fps) and the decode-once, decode-little frame reader."""

import av
import numpy as np
import pytest

from haic_core.accumulation.sampling import merge_timestamps, per_second_timestamps, uniform_timestamps
from haic_resources.video.frame_reader import index_of_times, read_frames_at, resized_size


# ---------------------------------------------------------------- sampling
def test_sixteen_uniform_samples_are_bin_centres():
    ts = uniform_timestamps(2.0, 10.0)
    assert len(ts) == 16
    assert ts == pytest.approx([2.0 + (i + 0.5) * 0.5 for i in range(16)])  # 2.25, 2.75, …, 9.75


def test_one_fps_samples_are_centres_of_whole_seconds():
    assert per_second_timestamps(0.0, 10.29) == pytest.approx([k + 0.5 for k in range(10)])
    assert per_second_timestamps(3.75, 8.76) == pytest.approx([4.25, 5.25, 6.25, 7.25, 8.25])
    assert per_second_timestamps(0.0, 5.0) == pytest.approx([0.5, 1.5, 2.5, 3.5, 4.5])
    assert per_second_timestamps(1.0, 1.4) == pytest.approx([1.2])  # shorter than a period
    assert per_second_timestamps(0.0, 4.0, fps=2.0) == pytest.approx([0.25 + 0.5 * k for k in range(8)])


def test_merge_and_index_of_times():
    u, p = uniform_timestamps(0, 8), per_second_timestamps(0, 8)  # u: 0.25, 0.75, …; p: 0.5, 1.5, …
    merged = merge_timestamps(u, p)
    assert len(merged) == 16 + 8  # no instant in common
    assert merge_timestamps(uniform_timestamps(0, 16), per_second_timestamps(0, 16)) == pytest.approx(
        [k + 0.5 for k in range(16)]
    )  # a 16 s clip: the 16 bin centres are the 1 fps samples, each decoded once
    assert [merged[i] for i in index_of_times(merged, p)] == pytest.approx(p)


def test_bad_windows_are_refused():
    with pytest.raises(ValueError):
        uniform_timestamps(5.0, 5.0)
    with pytest.raises(ValueError):
        per_second_timestamps(0.0, 1.0, fps=0)


def test_resized_size_keeps_aspect():
    assert resized_size(1280, 720, 384) == (384, 216)
    assert resized_size(426, 240, 384) == (384, 216)
    assert resized_size(176, 144, None) == (176, 144)


# ---------------------------------------------------------------- frame reader
def all_frame_times(path):
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        return np.array([float((f.pts - (s.start_time or 0)) * s.time_base) for f in c.decode(s)])


@pytest.mark.slow
def test_frames_are_nearest_to_requested_times_on_vfr_video(video):
    path = video("pyscenedetect_goldeneye_vfr_drop3.mp4")  # variable frame rate, dropped frames
    start, end = 3.75, 8.76  # the scene between two cuts
    ts = merge_timestamps(uniform_timestamps(start, end), per_second_timestamps(start, end))
    sample = read_frames_at(path, ts, start, end, long_side=384)
    times = all_frame_times(path)
    assert len(sample.frames) == len(ts)
    for f in sample.frames:
        nearest = times[np.argmin(np.abs(times - f.requested_s))]
        assert f.pts_s == pytest.approx(nearest)
    # decode little: from the keyframe at the cut (3.75 s) to the last sample, not the whole video
    assert sample.frames_decoded < 0.6 * len(times)
    assert (sample.width, sample.height) == (1280, 544)
    assert sample.frames[0].image.shape == (163, 384, 3) and sample.frames[0].image.dtype == np.uint8


@pytest.mark.slow
def test_later_scene_is_decoded_from_its_own_keyframe(video):
    path = video("pyscenedetect_goldeneye_vfr_drop3.mp4")
    sample = read_frames_at(path, uniform_timestamps(8.76, 9.97), 8.76, 9.97, long_side=None)
    assert sample.frames_decoded <= 22  # 1.21 s at ~16 fps plus the keyframe
    assert sample.frames[0].image.shape == (544, 1280, 3)


@pytest.mark.slow
def test_avi_frames_are_timed_by_count(video):
    # This AVI's h264 B-frames come out of FFmpeg with decode-order pts; frames are counted instead.
    path = video("mmaction2_ntu_drink_static_1p.avi")
    ts = uniform_timestamps(0.0, 3.43)
    sample = read_frames_at(path, ts, 0.0, 3.43, long_side=384)
    for f in sample.frames:
        assert f.pts_s == pytest.approx(round(f.requested_s * 30) / 30)
    assert (sample.width, sample.height) == (1920, 1080)


@pytest.mark.slow
def test_rgb_and_resized_once(video):
    path = video("sam2_juggle_1p.mp4")
    sample = read_frames_at(path, [5.0], 0.0, 10.29, long_side=384)
    frame = sample.frames[0]
    assert frame.image.shape == (216, 384, 3) and frame.scale == pytest.approx(0.3)
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        ref = next(f for f in c.decode(s) if abs(float(f.pts * s.time_base) - frame.pts_s) < 1e-9)
        ref = ref.to_ndarray(format="rgb24")
    import cv2

    expected = cv2.resize(ref, (384, 216), interpolation=cv2.INTER_AREA)
    assert np.abs(frame.image.astype(int) - expected.astype(int)).mean() < 4  # same picture, RGB order


def test_timestamps_outside_the_window_are_refused(video):
    with pytest.raises(ValueError):
        read_frames_at(video("sam2_juggle_1p.mp4"), [11.0], 0.0, 10.0)
