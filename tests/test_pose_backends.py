"""Pose backends behind one interface: YOLOX-nano + MoveNet (default), MoveNet, detector + RTMPose on ONNX,
mmpose; duplicate suppression on every backend."""

import importlib.util
import json
import pickle
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from haic_resources.pose.detector_movenet import DetectorMoveNet
from haic_resources.pose.estimator import Person, PoseEstimator, make_pose_estimator, nms, suppress_duplicates
from haic_resources.pose.movenet import decode_movenet_output, ensure_movenet_model, letterbox_shape
from haic_resources.pose.resource import PoseResource
from haic_resources.pose.rtmpose_onnx import (
    choose_providers, crop_transform, decode_simcc, decode_yolox, resolve_model_file, yolox_grid,
)  # fmt: skip
from haic_resources.pose.settings import PoseSettings, make_estimator
from haic_resources.storage.files import sha256_file
from haic_resources.storage.s3 import S3Settings
from tests.test_video_fetch import moto_s3  # noqa: F401 - the real S3 server fixture


def rgb(path):
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def box_iou(a, b):
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0, x1 - x0) * max(0, y1 - y0)
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def coco_people(media_dir):
    """(image path, [annotated xyxy boxes of people with keypoints]) for the COCO test images."""
    ann = json.loads((media_dir / "images/coco/test_coco.json").read_text())
    out = []
    for img in ann["images"]:
        boxes = [
            [a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]]
            for a in ann["annotations"] if a["image_id"] == img["id"] and a["num_keypoints"] > 0
        ]  # fmt: skip
        out.append((media_dir / "images/coco" / img["file_name"], boxes))
    return out


def coco_people_found(estimator, media_dir) -> tuple[int, int, list]:
    """(annotated COCO people that a person `estimator` found overlaps at IoU >= 0.5, annotated people,
    every person it found)."""
    found = total = 0
    everyone = []
    for path, boxes in coco_people(media_dir):
        people = estimator.estimate([rgb(path)])[0]
        total += len(boxes)
        found += sum(any(box_iou(b, p.box) >= 0.5 for p in people) for b in boxes)
        everyone += people
    return found, total, everyone


def test_unknown_backend_is_refused():
    with pytest.raises(ValueError, match="movenet"):
        make_pose_estimator("openpose")


def test_person_checks_shapes():
    with pytest.raises(ValueError):
        Person(box=np.zeros(4), score=1.0, keypoints=np.zeros((16, 2)), keypoint_scores=np.zeros(17))


# ---------------------------------------------------------------- mmpose (optional)
@pytest.mark.skipif(importlib.util.find_spec("mmpose") is not None, reason="mmpose is installed here")
def test_mmpose_backend_explains_how_to_install(tmp_path, models_dir):
    config = tmp_path / "rtmpose-t.py"
    config.write_text("model = dict()\n")
    with pytest.raises(ValueError, match="needs pose_config"):
        make_pose_estimator("mmpose")
    if importlib.util.find_spec("mmpose") is None:
        with pytest.raises(ImportError, match="uv sync --extra mmpose"):
            make_pose_estimator("mmpose", pose_config=str(config), random_weights=True,
                                detector_path=str(models_dir / "yolox_nano.onnx"))


# ---------------------------------------------------------------- MoveNet
def test_movenet_letterbox_shape():
    assert letterbox_shape(720, 1280, 384) == (0.3, 216, 384, 224, 384)
    assert letterbox_shape(240, 426, 384)[1:] == (216, 384, 224, 384)


def test_movenet_output_decoding_by_hand():
    row = np.zeros(56)
    row[0:3] = [0.5, 0.25, 0.9]  # nose at y=0.5, x=0.25 of the padded 224 x 384 input
    row[51:55] = [0.1, 0.2, 0.9, 0.6]  # ymin, xmin, ymax, xmax
    row[55] = 0.7
    low = np.zeros(56)
    low[55] = 0.1
    people = decode_movenet_output(np.stack([row, low]), 224, 384, 0.3, min_person_score=0.2)
    assert len(people) == 1
    p = people[0]
    assert p.keypoints[0] == pytest.approx([0.25 * 384 / 0.3, 0.5 * 224 / 0.3])
    assert p.box == pytest.approx([0.2 * 384 / 0.3, 0.1 * 224 / 0.3, 0.6 * 384 / 0.3, 0.9 * 224 / 0.3])
    assert p.score == pytest.approx(0.7) and p.keypoint_scores[0] == pytest.approx(0.9)


def test_movenet_refuses_a_model_with_the_wrong_hash(tmp_path):
    fake = tmp_path / "fake.nfd"
    with zipfile.ZipFile(fake, "w") as zf:
        zf.writestr("models/movenet.tflite", b"not the model")
    with pytest.raises(ValueError, match="sha256"):
        ensure_movenet_model(tmp_path / "cache", archive_path=fake)
    assert not list((tmp_path / "cache").glob("*.tflite"))


def test_movenet_missing_archive_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="archive"):
        ensure_movenet_model(tmp_path, archive_path=tmp_path / "nope.nfd")


@pytest.fixture(scope="module")
def movenet(tmp_path_factory):
    return make_pose_estimator("movenet", cache_dir=tmp_path_factory.mktemp("models"))


def test_the_resource_and_a_child_build_the_model_from_the_same_settings(tmp_path, models_dir):
    detector = str(models_dir / "yolox_nano.onnx")
    pose = PoseResource(cache_dir=str(tmp_path), backend="detector_movenet", detector_model=detector)
    settings = pose.settings()
    assert pickle.loads(pickle.dumps(settings)) == settings
    assert pose.estimator() is make_estimator(settings)  # built once per process and settings
    assert isinstance(pose.estimator(), DetectorMoveNet) and settings.nms_iou == 0.45
    assert pose.describe() == f"detector_movenet {detector}, 2×2 tiles for crowds + MoveNet (long side 640, cpu)"
    assert PoseResource(cache_dir=str(tmp_path)).describe() == ("detector_movenet shipped YOLOX-nano, 2×2 tiles for "
                                                                "crowds + MoveNet (long side 640, cpu)")
    assert PoseResource(cache_dir=str(tmp_path), backend="movenet").describe() == ("movenet + 2×2 tiles for crowds "
                                                                                   "(long side 576, cpu)")
    assert PoseResource(cache_dir=str(tmp_path), backend="movenet", movenet_tiles=1).describe() == (
        "movenet (long side 384, cpu)")


def test_the_default_people_model_is_the_shipped_detector_verified_by_its_hash(tmp_path, monkeypatch):
    from haic_resources.pose import detector_movenet

    model = make_estimator(PoseSettings(cache_dir=str(tmp_path)))
    assert isinstance(model, DetectorMoveNet) and (model.tile_grid, model.tile_from_people) == (2, 2)
    assert model.detector.model_path == detector_movenet.SHIPPED_DETECTOR
    assert detector_movenet.sha256_file(detector_movenet.SHIPPED_DETECTOR) == (
        (detector_movenet.SHIPPED_DETECTOR.parent / "yolox_nano.onnx.sha256").read_text().split()[0])
    damaged = tmp_path / "yolox_nano.onnx"
    damaged.write_bytes(detector_movenet.SHIPPED_DETECTOR.read_bytes()[:-1])
    monkeypatch.setattr(detector_movenet, "SHIPPED_DETECTOR", damaged)
    with pytest.raises(ValueError, match="refusing to run an unverified model"):
        DetectorMoveNet(tmp_path)
    monkeypatch.setattr(detector_movenet, "SHIPPED_DETECTOR", tmp_path / "gone.onnx")
    with pytest.raises(FileNotFoundError, match="set HAIC_POSE_DETECTOR_MODEL"):
        DetectorMoveNet(tmp_path)


# ---------------------------------------------------------------- duplicate suppression
def person(box, score):
    return Person(box=np.array(box, float), score=score, keypoints=np.zeros((17, 2)), keypoint_scores=np.zeros(17))


def test_one_person_found_twice_counts_once_and_neighbours_stay():
    first, twice = person([0, 0, 40, 100], 0.8), person([6, 8, 46, 108], 0.6)  # IoU 0.64 with the first
    neighbour = person([45, 0, 85, 100], 0.7)  # side by side: IoU 0
    kept = suppress_duplicates([twice, neighbour, first])
    assert kept == [first, neighbour]
    assert suppress_duplicates([twice, neighbour, first], iou_threshold=0.65) == [first, neighbour, twice]
    assert nms(np.array([[0, 0, 10, 10], [20, 20, 30, 30.0]]), np.array([0.5, 0.6]), 0.45) == [1, 0]


def test_movenet_rows_of_one_person_are_suppressed(movenet, monkeypatch):
    frame = np.zeros((224, 384, 3), np.uint8)
    rows = np.zeros((6, 56), np.float32)
    rows[0, 51:56] = [0.1, 0.1, 0.9, 0.3, 0.8]       # ymin, xmin, ymax, xmax, score
    rows[1, 51:56] = [0.15, 0.12, 0.95, 0.32, 0.5]   # the same person again
    rows[2, 51:56] = [0.1, 0.5, 0.9, 0.7, 0.4]       # someone else
    monkeypatch.setattr(movenet._interpreter, "get_tensor", lambda index: rows[None])
    people = movenet.estimate_one(frame)
    assert [round(p.score, 2) for p in people] == [0.8, 0.4]


@pytest.mark.slow
def test_movenet_is_extracted_once_verified_and_finds_annotated_people(movenet, media_dir):
    assert isinstance(movenet, PoseEstimator) and movenet.input_long_side == 384
    assert movenet.model_path.stat().st_size == 9_585_276
    again = ensure_movenet_model(movenet.model_path.parent)
    assert again == movenet.model_path
    found, total, everyone = coco_people_found(movenet, media_dir)
    for p in everyone:
        assert p.keypoints.shape == (17, 2) and 0 <= p.score <= 1
    assert total == 12 and found >= 11


# ---------------------------------------------------------------- ONNX: model files & providers
def test_missing_model_file_fails_fast(tmp_path):
    with pytest.raises(FileNotFoundError, match="never downloaded"):
        resolve_model_file(tmp_path / "rtmpose-m.onnx")
    with pytest.raises(FileNotFoundError):
        make_pose_estimator("onnx", detector_path=tmp_path / "det.onnx", pose_path=tmp_path / "pose.onnx")


class FakeS3:
    def __init__(self, objects):
        self.objects, self.calls = objects, 0

    def download_file(self, bucket, key, filename):
        self.calls += 1
        if (bucket, key) not in self.objects:
            raise RuntimeError("An error occurred (404) when calling the HeadObject operation: Not Found")
        Path(filename).write_bytes(self.objects[(bucket, key)])


def test_s3_model_is_copied_once_into_the_cache(tmp_path):
    s3 = FakeS3({("models", "pose/rtmpose.onnx"): b"onnx bytes"})
    first = resolve_model_file("s3://models/pose/rtmpose.onnx", tmp_path, lambda: s3)
    second = resolve_model_file("s3://models/pose/rtmpose.onnx", tmp_path, lambda: s3)
    assert first == second == tmp_path / "models/pose/rtmpose.onnx"
    assert first.read_bytes() == b"onnx bytes" and s3.calls == 1
    with pytest.raises(FileNotFoundError, match="s3://models/missing.onnx"):
        resolve_model_file("s3://models/missing.onnx", tmp_path, lambda: s3)
    assert not (tmp_path / "models/missing.onnx.part").exists()


@pytest.mark.services
def test_pose_models_come_through_the_configured_s3_endpoint(moto_s3, models_dir, tmp_path):  # noqa: F811
    client = S3Settings(endpoint_url=moto_s3).client()
    client.create_bucket(Bucket="models")
    for name in ("yolox_nano.onnx", "rtmpose_t_random.onnx"):
        client.upload_file(str(models_dir / name), "models", f"pose/{name}")
    pose = PoseResource(backend="onnx", detector_model="s3://models/pose/yolox_nano.onnx",
                        pose_model="s3://models/pose/rtmpose_t_random.onnx", cache_dir=str(tmp_path / "cache"),
                        s3_endpoint_url=moto_s3, s3_region="us-east-1")
    settings = pose.settings()
    assert settings.s3 == S3Settings(endpoint_url=moto_s3, region_name="us-east-1")
    assert pickle.loads(pickle.dumps(settings)) == settings  # what a child process receives
    assert make_estimator(settings).input_long_side == 416
    copied = tmp_path / "cache/models/pose/yolox_nano.onnx"
    assert copied.read_bytes() == (models_dir / "yolox_nano.onnx").read_bytes()


def test_execution_providers():
    assert choose_providers("cpu", ["CUDAExecutionProvider", "CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    assert choose_providers("cuda", ["CUDAExecutionProvider", "CPUExecutionProvider"])[0] == "CUDAExecutionProvider"
    assert choose_providers("auto", ["CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    assert choose_providers("cuda", ["CPUExecutionProvider"]) == ["CPUExecutionProvider"]  # falls back


# ---------------------------------------------------------------- ONNX: pre/post-processing by hand
def test_yolox_grid_has_3549_anchors_at_416():
    grid, strides = yolox_grid((416, 416))
    assert grid.shape == (3549, 2) and strides.shape == (3549, 1)  # 52² + 26² + 13²
    assert grid[52].tolist() == [0, 1] and strides[2704, 0] == 16


def test_yolox_decoding_and_nms_by_hand():
    raw = np.full((3549, 85), 0.0, dtype=np.float32)
    raw[:, 4] = 0.0  # objectness 0 everywhere but two anchors
    # anchor 52*10 + 20 at stride 8: cell (x=20, y=10); offsets 0.5 -> centre (164, 84); wh = e^1·8
    k = 52 * 10 + 20
    raw[k, :4] = [0.5, 0.5, 1.0, 1.0]
    raw[k, 4], raw[k, 5] = 0.9, 1.0
    raw[k + 1, :4] = [-0.5, 0.5, 1.0, 1.0]  # same box, one cell right -> suppressed by NMS
    raw[k + 1, 4], raw[k + 1, 5] = 0.8, 1.0
    boxes, scores = decode_yolox(raw, (416, 416), ratio=0.5, score_threshold=0.4, nms_threshold=0.45)
    half = np.e * 8 / 2
    assert scores.tolist() == pytest.approx([0.9])
    assert boxes[0] == pytest.approx(np.array([164 - half, 84 - half, 164 + half, 84 + half]) / 0.5, rel=1e-5)


def test_rtmpose_crop_is_padded_and_aspect_fixed():
    m = crop_transform(np.array([100.0, 100.0, 140.0, 300.0]), (192, 256), padding=1.25)
    # 40 x 200 box -> 50 x 250 padded -> width widened to 250 * 192/256 = 187.5; scale 256/250
    centre = m @ np.array([120.0, 200.0, 1.0])
    assert centre == pytest.approx([96.0, 128.0])
    assert m[0, 0] == pytest.approx(256 / 250) and m[1, 1] == pytest.approx(256 / 250)


def test_simcc_argmax_decoding_with_split_ratio_2():
    sx, sy = np.zeros((1, 17, 384), np.float32), np.zeros((1, 17, 512), np.float32)
    sx[0, :, 100], sy[0, :, 301] = 0.8, 0.6
    kps, scores = decode_simcc(sx, sy, 2.0)
    assert kps[0, 0].tolist() == [50.0, 150.5]
    assert scores[0, 0] == pytest.approx(0.6)  # the smaller of the two maxima


# ---------------------------------------------------------------- ONNX: real files
@pytest.fixture(scope="module")
def onnx_pose(models_dir):
    return make_pose_estimator(
        "onnx", detector_path=models_dir / "yolox_nano.onnx", pose_path=models_dir / "rtmpose_t_random.onnx"
    )


@pytest.mark.slow
def test_yolox_nano_finds_the_annotated_people(onnx_pose, media_dir):
    found = total = 0
    for path, boxes in coco_people(media_dir):
        img = rgb(path)
        det_boxes, det_scores = onnx_pose.detect(img)
        total += len(boxes)
        found += sum(any(box_iou(b, d) >= 0.5 for d in det_boxes) for b in boxes)
    assert total == 12 and found >= 10


@pytest.mark.slow
def test_rtmpose_contract_with_random_weights(onnx_pose, media_dir):
    """Random weights: keypoints are meaningless, but shapes, batching and mapping must hold."""
    assert onnx_pose.pose_input_wh == (192, 256) and onnx_pose.pose_batch == 1
    assert onnx_pose.input_long_side == 416 and onnx_pose.providers == ["CPUExecutionProvider"]
    img = rgb(media_dir / "images/coco/000000197388.jpg")
    people = onnx_pose.estimate([img, img[:, ::-1].copy()])
    assert len(people) == 2 and len(people[0]) >= 4
    for p in people[0]:
        assert p.keypoints.shape == (17, 2) and p.keypoint_scores.shape == (17,)
        assert ((0 <= p.keypoint_scores) & (p.keypoint_scores <= 1)).all()
        # every keypoint lies inside the padded crop of its box
        w, h = p.box[2] - p.box[0], p.box[3] - p.box[1]
        side = max(w * 1.25, h * 1.25 * 192 / 256)
        cx = (p.box[0] + p.box[2]) / 2
        assert (np.abs(p.keypoints[:, 0] - cx) <= side / 2 + 1).all()
    crops, maps = onnx_pose.crops(img, np.array([p.box for p in people[0]]))
    assert crops.shape == (len(people[0]), 3, 256, 192) and crops.dtype == np.float32
    kps, scores = onnx_pose.run_pose(crops)  # fixed batch 1: looped, same contract
    assert kps.shape == (len(people[0]), 17, 2) and scores.shape == (len(people[0]), 17)
    assert onnx_pose.estimate([np.zeros((240, 320, 3), np.uint8)]) == [[]]


# ---------------------------------------------------------------- YOLOX-nano + MoveNet crops
@pytest.fixture(scope="module")
def detector_movenet(tmp_path_factory, models_dir):
    return make_estimator(PoseSettings(cache_dir=str(tmp_path_factory.mktemp("models")), backend="detector_movenet",
                                       detector_model=str(models_dir / "yolox_nano.onnx")))


@pytest.mark.slow
def test_the_default_finds_every_annotated_coco_person_with_keypoints_on_them(detector_movenet, media_dir):
    """Measured (bench/eval_pose_accuracy.py): 12/12 COCO people with keypoints at IoU >= 0.5; each found
    person's keypoints come from MoveNet on its own crop and lie near its box."""
    found, total, everyone = coco_people_found(detector_movenet, media_dir)
    for p in everyone:
        seen = p.keypoint_scores >= 0.3
        w, h = p.box[2] - p.box[0], p.box[3] - p.box[1]
        assert (np.abs(p.keypoints[seen] - (p.box[:2] + p.box[2:]) / 2) <= [0.65 * max(w, h)] * 2).all()
    assert total == 12 and found == 12
    assert detector_movenet.estimate([np.zeros((360, 640, 3), np.uint8)]) == [[]]
