"""`haic people FILE`: the configured people model on an image or on a clip's 16 presence samples."""

from __future__ import annotations

import json

import cv2
import pytest

from haic_cli.main import main

pytestmark = pytest.mark.slow


@pytest.fixture()
def home(tmp_path, monkeypatch, models_dir):
    monkeypatch.setenv("HAIC_HOME", str(tmp_path / "home"))
    for name in ("HAIC_POSE_MODEL", "HAIC_POSE_NMS_IOU"):
        monkeypatch.delenv(name, raising=False)
    # The crowd-counting people model, as a deployment configures it.
    monkeypatch.setenv("HAIC_POSE_BACKEND", "detector_movenet")
    monkeypatch.setenv("HAIC_POSE_DETECTOR_MODEL", str(models_dir / "yolox_nano.onnx"))
    return tmp_path


def people_json(capsys, *argv) -> dict:
    assert main(["people", *map(str, argv), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_an_image_s_people_in_its_own_pixels(home, media_dir, capsys):
    image = media_dir / "images/coco/000000197388.jpg"  # 5 skiers, 640 x 392
    found = people_json(capsys, image)
    assert found["backend"] == "detector_movenet" and len(found["frames"]) == 1
    frame = found["frames"][0]
    assert frame["time_s"] is None and frame["count"] == len(frame["people"]) == 5
    assert 0.1 < frame["coverage"] < 1.0
    for p in frame["people"]:
        x0, y0, x1, y1 = p["box"]
        assert 0 <= x0 < x1 <= 640 and 0 <= y0 < y1 <= 392 and p["score"] >= 0.2
        assert len(p["keypoints"]) == 17 and all(len(k) == 3 for k in p["keypoints"])
    alone = people_json(capsys, image, "--backend", "movenet")
    assert alone["backend"] == "movenet" and alone["frames"][0]["count"] <= 6


def test_a_clip_s_sixteen_presence_samples_and_a_contact_sheet(home, video, capsys):
    sheet = home / "dog.png"
    found = people_json(capsys, video("sam2_dog_1p.mp4"), "--sheet", sheet)  # 1 woman, 1280 x 720
    times = [f["time_s"] for f in found["frames"]]
    assert len(times) == 16 and times == sorted(times) and 0 < times[0] < times[-1] < 9.66
    assert [f["count"] for f in found["frames"]] == [1] * 16
    for f in found["frames"]:
        x0, y0, x1, y1 = f["people"][0]["box"]
        assert x1 <= 1280 and y1 <= 720 and (x1 - x0) * (y1 - y0) / (1280 * 720) == pytest.approx(f["coverage"], abs=2e-3)
    image = cv2.imread(str(sheet))
    assert image is not None and image.shape[1] == 4 * 320


def test_the_table_names_the_model_and_each_frame(home, media_dir, capsys):
    assert main(["people", str(media_dir / "images/coco/000000000785.jpg")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "detector_movenet" in lines[0] and "640x425" in lines[0]
    assert lines[1].split()[:3] == ["image", "count", "1"]


def test_a_missing_file_or_model_is_refused(home, media_dir, capsys):
    assert main(["people", str(home / "nothing.mp4")]) == 2
    assert "not a file" in capsys.readouterr().err
    (home / "text.mp4").write_text("not a video")
    assert main(["people", str(home / "text.mp4")]) == 2
    assert capsys.readouterr().err.startswith("haic people: ")
    # the ONNX path has no default model files: it says so instead of downloading anything
    assert main(["people", str(media_dir / "images/coco/000000000785.jpg"), "--backend", "onnx"]) == 2
    assert "haic people:" in capsys.readouterr().err


def test_another_backend_keeps_the_deployments_detector_file(home, media_dir, models_dir, monkeypatch, capsys):
    image = media_dir / "images/coco/000000000785.jpg"
    monkeypatch.setenv("HAIC_POSE_BACKEND", "movenet")  # the deployment runs MoveNet; its detector file is set
    copy = home / "detectors" / "people.onnx"
    copy.parent.mkdir()
    copy.write_bytes((models_dir / "yolox_nano.onnx").read_bytes())
    monkeypatch.setenv("HAIC_POSE_DETECTOR_MODEL", str(copy))
    found = people_json(capsys, image, "--backend", "detector_movenet")
    assert (found["backend"], found["detector_model"]) == ("detector_movenet", str(copy))
    assert found["frames"][0]["count"] == 1
    monkeypatch.setenv("HAIC_POSE_DETECTOR_MODEL", str(home / "detectors" / "missing.onnx"))
    assert main(["people", str(image), "--backend", "detector_movenet"]) == 2
    assert f"pose model file not found: {home / 'detectors' / 'missing.onnx'}" in capsys.readouterr().err
    monkeypatch.delenv("HAIC_POSE_DETECTOR_MODEL")
    shipped = people_json(capsys, image, "--backend", "detector_movenet")  # none set: the shipped YOLOX-nano
    assert shipped["detector_model"] is None and shipped["frames"][0]["count"] == 1
