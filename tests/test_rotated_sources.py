"""Issue 12: a portrait phone video (landscape frames + a display matrix) is seen upright by the
presence and pose step, as by the clip cut: same frames, same sizes, same people as the upright
original it was made from."""

from __future__ import annotations

import av
import numpy as np
import pytest

from haic_resources.pose.clip_people import sample_clip_people
from haic_resources.pose.settings import PoseSettings, make_estimator
from haic_resources.video.frame_reader import read_frames_at
from haic_resources.video.probe import probe_video_in_process

pytestmark = pytest.mark.slow
SECONDS = 3.0


def phone_style_copy(src, dst, seconds: float = SECONDS):
    """The first `seconds` of `src` stored as a phone stores portrait video: each upright frame turned a
    quarter clockwise in the file, and a display matrix saying 'turn 90 degrees counter-clockwise'.
    Also writes the upright copy (same encoder, same quality) for comparison."""
    upright = dst.with_name("upright.mp4")
    with av.open(str(src)) as inp, av.open(str(dst), "w") as phone, av.open(str(upright), "w") as plain:
        stream = inp.streams.video[0]
        h, w = stream.codec_context.height, stream.codec_context.width
        outs = []
        for container, (width, height), rotation in ((phone, (h, w), 90), (plain, (w, h), None)):
            out = container.add_stream("libx264", rate=25)
            out.width, out.height, out.pix_fmt = width, height, "yuv420p"
            out.options = {"crf": "12"}
            if rotation is not None:
                out.set_display_rotation(rotation)
            outs.append((container, out))
        for frame in inp.decode(stream):
            if frame.time > seconds:
                break
            image = frame.to_ndarray(format="rgb24")
            for (container, out), stored in zip(outs, (np.rot90(image, k=-1), image)):
                for packet in out.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(stored), format="rgb24")):
                    container.mux(packet)
        for container, out in outs:
            for packet in out.encode():
                container.mux(packet)
    return dst, upright


def test_a_phone_video_is_read_upright_and_its_people_are_the_upright_ones(tmp_path, video):
    phone, upright = phone_style_copy(video("sam2_juggle_1p.mp4"), tmp_path / "phone.mp4")
    probe = probe_video_in_process(str(phone))
    assert (probe.width, probe.height, probe.rotation_deg) == (720, 1280, 90)  # stored sideways, shown upright
    times = [0.5, 1.5, 2.5]
    ours = read_frames_at(phone, times, 0.0, SECONDS, long_side=384)
    theirs = read_frames_at(upright, times, 0.0, SECONDS, long_side=384)
    assert (ours.width, ours.height) == (theirs.width, theirs.height) == (1280, 720)
    for a, b in zip(ours.frames, theirs.frames):
        assert a.image.shape == b.image.shape == (216, 384, 3)
        assert np.abs(a.image.astype(int) - b.image.astype(int)).mean() < 3.0  # the same picture
    estimator = make_estimator(PoseSettings(cache_dir=str(tmp_path / "models")))
    found = sample_clip_people(str(phone), 0.0, SECONDS, estimator, presence_samples=4)
    expected = sample_clip_people(str(upright), 0.0, SECONDS, estimator, presence_samples=4)
    assert (found.width, found.height) == (expected.width, expected.height)
    assert [len(p) for p in found.people] == [len(p) for p in expected.people] and sum(map(len, found.people)) > 0
    for ours_, theirs_ in zip(found.people, expected.people):
        for a, b in zip(ours_, theirs_):
            assert np.abs(np.asarray(a.box) - np.asarray(b.box)).max() < 0.05 * max(found.width, found.height)
