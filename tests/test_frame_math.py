"""The GPU path's integer pixel code (`frame_math`) against the OpenCV calls it stands in for, on numpy (CI has
no GPU and no torch; the device test checks torch on the GPU gives the same bytes)."""

from __future__ import annotations

import av
import cv2
import numpy as np
import pytest

from haic_resources.video import frame_math as fm
from haic_resources.video.yuv_sources import yuv420_planes


def test_hsv_is_opencvs_for_every_colour():
    every = np.arange(1 << 24, dtype=np.uint32)
    image = np.stack([(every >> 16) & 255, (every >> 8) & 255, every & 255], -1).astype(np.uint8)
    image = image.reshape(1, 4096, 4096, 3)
    assert np.array_equal(fm.bgr_to_hsv_cv2(image)[0], cv2.cvtColor(image[0], cv2.COLOR_BGR2HSV))


@pytest.mark.parametrize("size", [(720, 1280), (336, 596), (240, 426), (1080, 1920), (544, 1280), (256, 512),
                                  (245, 331), (144, 176)])
def test_linear_resize_is_opencvs_inter_linear(size):
    h, w = size
    aw, ah = fm.detect_analysis_size(w, h)
    images = np.random.default_rng(h * w).integers(0, 256, (2, h, w, 3), dtype=np.uint8)
    expected = np.stack([cv2.resize(i, (aw, ah), interpolation=cv2.INTER_LINEAR) for i in images])
    assert np.array_equal(fm.linear_resize_cv2(images, ah, aw), expected)


def test_analysis_frame_from_planes_is_the_resized_conversion():
    rng = np.random.default_rng(7)
    y = rng.integers(0, 256, (2, 245, 331), dtype=np.uint8)
    u, v = (rng.integers(0, 256, (2, 123, 166), dtype=np.uint8) for _ in range(2))
    aw, ah = fm.detect_analysis_size(331, 245)
    whole = fm.linear_resize_cv2(fm.yuv420_to_rgb(y, u, v, fm.Colour("bt709")), ah, aw)[..., ::-1]
    assert np.array_equal(fm.yuv420_to_bgr_linear(y, u, v, fm.Colour("bt709"), ah, aw), whole)


def test_detect_analysis_size_is_pyscenedetects():
    assert fm.detect_analysis_size(1280, 720) == (256, 144)
    assert fm.detect_analysis_size(596, 336) == (256, 144)
    assert fm.detect_analysis_size(176, 144) == (176, 144)


@pytest.mark.slow
def test_yuv_to_rgb_is_opencvs_decoded_frame_byte_for_byte(media_dir):
    """Every 4:2:0 shared video's first frames: our conversion of PyAV's planes equals cv2.VideoCapture's BGR."""
    checked = 0
    for path in sorted((media_dir / "videos").iterdir()):
        capture = cv2.VideoCapture(str(path))
        with av.open(str(path)) as container:
            for k, frame in enumerate(container.decode(video=0)):
                if k == 3 or frame.format.name != "yuv420p":
                    break
                ok, bgr = capture.read()
                assert ok
                y, u, v = yuv420_planes(frame)
                colour = fm.Colour.from_tags(int(frame.colorspace), int(frame.color_range) == 2)
                ours = fm.yuv420_to_rgb(y[None], u[None], v[None], colour)[0][..., ::-1]
                assert np.array_equal(ours, bgr), path.name
                checked += 1
        capture.release()
    assert checked >= 3 * 19  # every shared video but the 4:4:4 one


def test_area_resize_keeps_flat_images_and_averages_halves():
    flat = np.full((1, 90, 160, 3), 77, dtype=np.uint8)
    assert np.array_equal(fm.area_resize(flat, 45, 80), np.full((1, 45, 80, 3), 77, dtype=np.uint8))
    stripes = np.zeros((1, 2, 4, 1), dtype=np.uint8)
    stripes[:, :, 1::2] = 255  # columns 0, 255, 0, 255: each pair averages to 127.5, rounded up
    assert fm.area_resize(stripes, 1, 2).ravel().tolist() == [128, 128]
    ramp = np.arange(9, dtype=np.uint8).reshape(1, 1, 9, 1) * 10  # 0..80 into 3: means of 3
    assert fm.area_resize(ramp, 1, 3).ravel().tolist() == [10, 40, 70]


def test_hsv_delta_sums_and_content_score_match_content_detector():
    from scenedetect import ContentDetector

    rng = np.random.default_rng(3)
    frames = rng.integers(0, 256, (4, 36, 64, 3), dtype=np.uint8)
    hsv = fm.bgr_to_hsv_cv2(frames)
    sums = np.concatenate([fm.hsv_delta_sums(hsv[:2]), fm.hsv_delta_sums(hsv[2:], hsv[1])])
    detector = ContentDetector()
    expected = [detector._calculate_frame_score(None, f) for f in frames]
    assert [fm.content_score(s, 36 * 64) for s in sums] == expected
