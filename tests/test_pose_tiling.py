"""Counting a crowd over overlapping tiles (haic_resources/pose/tiling.py) and MoveNet's tiled passes."""

import numpy as np
import pytest

from haic_resources.pose.estimator import Person
from haic_resources.pose.tiling import cut_by_tile, merge_tile_people, overlap_of_smaller, tile_windows


def person(box, score=0.5):
    return Person(box=np.array(box, dtype=np.float64), score=score, keypoints=np.zeros((17, 2)),
                  keypoint_scores=np.zeros(17))


def test_a_grid_of_three_is_nine_half_size_tiles_overlapping_by_half():
    assert tile_windows(432, 768, 3) == [
        (0, 0, 384, 216), (192, 0, 576, 216), (384, 0, 768, 216),
        (0, 108, 384, 324), (192, 108, 576, 324), (384, 108, 768, 324),
        (0, 216, 384, 432), (192, 216, 576, 432), (384, 216, 768, 432)]
    assert tile_windows(300, 400, 2) == [(0, 0, 267, 200), (133, 0, 400, 200), (0, 100, 267, 300), (133, 100, 400, 300)]
    with pytest.raises(ValueError, match="at least 2"):
        tile_windows(300, 400, 1)


def test_a_box_at_an_inner_tile_edge_is_cut_and_one_at_the_frames_edge_is_not():
    middle = (192, 108, 576, 324)
    assert cut_by_tile(np.array([193.0, 150, 250, 300]), middle, 432, 768)      # at the tile's left edge
    assert not cut_by_tile(np.array([200.0, 150, 250, 300]), middle, 432, 768)  # inside
    top_left = (0, 0, 384, 216)
    assert not cut_by_tile(np.array([0.0, 0, 50, 100]), top_left, 432, 768)     # at the frame's corner
    assert cut_by_tile(np.array([300.0, 100, 383, 200]), top_left, 432, 768)    # at its right edge, inside the frame


def test_overlap_is_over_the_smaller_box():
    np.testing.assert_allclose(overlap_of_smaller(np.array([0.0, 0, 10, 10]), np.array([[0.0, 0, 100, 100],
                                                                                        [5, 0, 15, 10],
                                                                                        [20, 20, 30, 30]])),
                               [1.0, 0.5, 0.0])


def test_tile_people_add_only_the_people_nobody_counted():
    big = person([100, 50, 300, 430], 0.9)  # a large person the whole frame found
    whole = [big]
    tiles = [
        ((0, 0, 384, 216), [person([150, 60, 250, 150], 0.6),     # the big person's head alone: inside big
                            person([20, 20, 60, 120], 0.7)]),      # a small person nobody counted
        ((192, 0, 576, 216), [person([500, 30, 540, 130], 0.4),   # another small person
                              person([193, 20, 230, 120], 0.8)]),  # cut by this tile's left edge
        ((384, 0, 768, 216), [person([502, 31, 541, 131], 0.5)]),  # the same small person, seen twice
    ]
    merged = merge_tile_people(whole, tiles, 432, 768, nms_iou=0.45)
    assert [p.box.tolist() for p in merged] == [[100, 50, 300, 430], [20, 20, 60, 120], [502, 31, 541, 131]]
    assert merge_tile_people(whole, [], 432, 768, nms_iou=0.45) == whole


def lone_and_crowd(video, long_side: int):
    """A frame of one juggler and a frame of a street crowd (many small people), at `long_side` px."""
    from haic_resources.video.frame_reader import read_frames_at

    lone = read_frames_at(video("sam2_juggle_1p.mp4"), [2.0], 0.0, 10.0, long_side=long_side).frames[0].image
    crowd = read_frames_at(video("opencv_vtest_pedestrians_first20s.mp4"), [14.375], 0.0, 20.0,
                           long_side=long_side).frames[0].image
    return lone, crowd


def test_the_default_movenet_tiles_a_crowd_and_looks_once_at_a_lone_person(tmp_path, video):
    from haic_resources.pose.movenet import MoveNetMultiPose
    from haic_resources.pose.settings import PoseSettings, make_estimator

    model = make_estimator(PoseSettings(cache_dir=str(tmp_path), backend="movenet"))
    assert (model.tile_grid, model.input_long_side, model.model_long_side) == (2, 576, 384)
    lone, crowd = lone_and_crowd(video, long_side=576)
    passes = []
    one_pass = model._one_pass
    model._one_pass = lambda frame: passes.append(frame.shape) or one_pass(frame)
    try:
        assert len(model.estimate_one(lone)) == 1 and passes == [(324, 576, 3)]
        passes.clear()
        tiled = model.estimate_one(crowd)
        assert passes == [(432, 576, 3)] + [(288, 384, 3)] * 4  # the whole frame, then four tiles at the model's size
    finally:
        del model._one_pass  # the model is cached per settings
    whole_only = MoveNetMultiPose(tmp_path).estimate_one(crowd)
    assert len(whole_only) <= 5 < len(tiled)


def test_the_tile_grid_is_a_deployment_setting_and_a_wrong_one_names_itself(tmp_path, monkeypatch):
    from haic_assets.platform.resources import build_resources

    monkeypatch.setenv("HAIC_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("HAIC_POSE_BACKEND", raising=False)
    monkeypatch.setenv("HAIC_POSE_MOVENET_TILES", "3")
    assert build_resources()["pose"].settings().movenet_tiles == 3
    monkeypatch.delenv("HAIC_POSE_MOVENET_TILES")
    assert build_resources()["pose"].settings().movenet_tiles == 2
    monkeypatch.setenv("HAIC_POSE_MOVENET_TILES", "three")
    with pytest.raises(ValueError, match=r"^HAIC_POSE_MOVENET_TILES='three' is not an integer$"):
        build_resources()
    monkeypatch.setenv("HAIC_POSE_MOVENET_TILES", "1")
    monkeypatch.setenv("HAIC_POSE_NMS_IOU", "0.4.5")
    with pytest.raises(ValueError, match=r"^HAIC_POSE_NMS_IOU='0.4.5' is not a number$"):
        build_resources()


def test_the_people_model_is_part_of_human_presences_code_version_and_the_device_is_not(monkeypatch):
    from haic_assets.accumulation.human_presence import human_presence
    from haic_platform.settings import Settings

    def version() -> str:
        built = human_presence.build(Settings())
        return built.code_versions_by_key[built.keys_by_output_name["human_presence"]]

    for name in ("HAIC_POSE_BACKEND", "HAIC_POSE_MOVENET_TILES", "HAIC_POSE_DEVICE", "HAIC_POSE_HALF"):
        monkeypatch.delenv(name, raising=False)
    default = version()
    monkeypatch.setenv("HAIC_POSE_DEVICE", "cuda")
    monkeypatch.setenv("HAIC_POSE_HALF", "1")
    assert version() == default  # where and how precisely it runs: the same model
    monkeypatch.setenv("HAIC_POSE_MOVENET_TILES", "3")
    tiled_more = version()
    monkeypatch.setenv("HAIC_POSE_BACKEND", "onnx")
    assert len({default, tiled_more, version()}) == 3


def test_the_default_detector_tiles_a_crowd_and_looks_once_at_a_lone_person(tmp_path, video):
    from haic_resources.pose.settings import PoseSettings, make_estimator

    model = make_estimator(PoseSettings(cache_dir=str(tmp_path)))  # the shipped YOLOX-nano + MoveNet crops
    assert (model.tile_grid, model.input_long_side) == (2, 640)
    lone, crowd = lone_and_crowd(video, long_side=640)
    looks = []
    detect = model.detector.detect
    model.detector.detect = lambda frame: looks.append(frame.shape) or detect(frame)
    try:
        assert len(model.estimate_one(lone)) == 1 and looks == [(360, 640, 3)]
        looks.clear()
        tiled = model.detect(crowd)[0]
        assert looks == [(480, 640, 3)] + [(320, 427, 3)] * 4  # the whole frame, then four overlapping tiles
    finally:
        del model.detector.detect  # the model is cached per settings
    whole_only = model.detector.detect(crowd)[0]
    assert len(whole_only) < len(tiled)


def test_the_detectors_tile_grid_is_a_deployment_setting(tmp_path, monkeypatch):
    from haic_assets.platform.resources import build_resources

    monkeypatch.setenv("HAIC_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("HAIC_POSE_BACKEND", raising=False)
    assert build_resources()["pose"].settings().detector_tiles == 2
    monkeypatch.setenv("HAIC_POSE_DETECTOR_TILES", "1")
    assert build_resources()["pose"].settings().detector_tiles == 1
    monkeypatch.setenv("HAIC_POSE_DETECTOR_TILES", "two")
    with pytest.raises(ValueError, match=r"^HAIC_POSE_DETECTOR_TILES='two' is not an integer$"):
        build_resources()
