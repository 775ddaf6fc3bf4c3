"""Leakage by content: a HAICBench clip that is a HAICTrain clip under another id is found by its
frames' difference hashes; different footage is not."""

from __future__ import annotations

import shutil

import cv2
import numpy as np
import pandas as pd
from dagster import AssetKey, materialize

from haic_core.evaluation.content_leakage import difference_hash, hamming, leaked_pairs, same_source_file
from haic_assets.definitions import build_definitions
from tests.helpers import dagster_instance, ledger, without_llm


def test_difference_hash_survives_rescaling_and_tells_scenes_apart():
    rng = np.random.default_rng(0)
    scene = cv2.GaussianBlur((rng.random((120, 160, 3)) * 255).astype(np.uint8), (31, 31), 0)
    other = cv2.GaussianBlur((rng.random((120, 160, 3)) * 255).astype(np.uint8), (31, 31), 0)
    assert hamming(difference_hash(scene), difference_hash(cv2.resize(scene, (320, 240)))) <= 4
    assert hamming(difference_hash(scene), difference_hash(other)) > 20
    pairs = leaked_pairs({"b1": [1, 2, 3]}, {"t1": [1, 2, 3], "t2": [2 ** 64 - 1]})  # t2: 62-63 bits away
    assert [(p.bench_clip_id, p.train_clip_id, p.matched_share) for p in pairs] == [("b1", "t1", 1.0)]


def test_a_benchmark_clip_that_is_a_training_clip_under_another_id_is_dropped(tmp_path, monkeypatch, video):
    without_llm(monkeypatch)
    home = tmp_path / "home"
    monkeypatch.setenv("HAIC_HOME", str(home))
    bench_videos = tmp_path / "bench"
    bench_videos.mkdir()
    shutil.copyfile(video("sam2_juggle_1p.mp4"), bench_videos / "omega-juggle-0.mp4")
    shutil.copyfile(video("sam2_dog_1p.mp4"), bench_videos / "omega-dog-0.mp4")
    defs = build_definitions()
    tables = defs.resources["storage"].tables()
    tables.write("qa_verified", "batch_1", pd.DataFrame({"clip_id": ["omega-juggle-0", "omega-dog-0"],
                                                         "qa_id": ["q1", "q2"]}))
    tables.write("haic_train", "webvid__a.csv", pd.DataFrame({"clip_id": ["webvid:77-0"], "clip_uri": ["x"]}))
    tables.write("action_filtered", "webvid__a.csv", pd.DataFrame({"clip_id": ["webvid:77-0"],
                                                                   "clip_path": [str(video("sam2_juggle_1p.mp4"))]}))
    with dagster_instance(home) as instance:
        result = materialize(list(defs.assets), instance=instance, resources=defs.resources, raise_on_error=False,
                             selection=[AssetKey("haicbench_content_leakage")],
                             run_config={"ops": {"haicbench_content_leakage": {"config": {
                                 "video_root": str(bench_videos)}}}})
    assert result.success
    leaks = tables.read("haicbench_content_leakage", "all")
    assert leaks[["bench_clip_id", "train_clip_id"]].values.tolist() == [["omega-juggle-0", "webvid:77-0"]]
    assert leaks["matched_share"].iloc[0] == 1.0
    rows = ledger(home)
    rows = rows[rows["stage"] == "haicbench_content_leakage"].set_index("item_id")
    assert rows.loc["omega-juggle-0", "verdict"] == "dropped"
    assert rows.loc["omega-juggle-0", "reason"] == "same footage as HAICTrain clip webvid:77-0"
    assert rows.loc["omega-dog-0", "verdict"] == "kept"


def test_clips_cut_from_byte_identical_source_files_pair_up_by_the_videos_sha256():
    """The same upload under two ids has one sha256 (the videos stage's): every clip of it pairs, whatever
    its window; a clip of unknown source pairs with nothing."""
    pairs = same_source_file({"omega:a-0": "f00d", "omega:b-0": "beef", "omega:c-0": None},
                             {"webvid:1-0": "f00d", "webvid:1-1": "f00d", "webvid:2-0": "cafe"})
    assert [(p.bench_clip_id, p.train_clip_id, p.matched_share, p.method) for p in pairs] == [
        ("omega:a-0", "webvid:1-0", 1.0, "source_sha256"), ("omega:a-0", "webvid:1-1", 1.0, "source_sha256")]


def test_the_leakage_guard_is_in_the_group_of_the_split_it_guards(tmp_path, monkeypatch):
    """The catalog shows haicbench_content_leakage beside haicbench_split (group haicbench), and the
    split depends on it."""
    monkeypatch.setenv("HAIC_HOME", str(tmp_path))
    graph = build_definitions().resolve_asset_graph()
    leakage, split = graph.get(AssetKey("haicbench_content_leakage")), graph.get(AssetKey("haicbench_split"))
    assert leakage.group_name == split.group_name == "haicbench"
    assert AssetKey("haicbench_content_leakage") in split.parent_keys
