"""Exports: JSONL/Parquet of the split and an lmms-eval task folder whose utils score correctly."""

from __future__ import annotations

import importlib.util
import json

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from haic_core.haicbench.export import benchmark_records, haicbench_release_files, lmms_eval_task_files

SPLIT_QA = pd.DataFrame([
    {"qa_id": "qa_1", "video_id": "v1", "clip_id": "c1", "category": "count", "question": "How many jumps?",
     "options": ["1", "2", "3", "4", "5"], "answer_index": 4},
    {"qa_id": "qa_2", "video_id": "v1", "clip_id": "c1", "category": "attribute", "question": "What cap?",
     "options": ["red", "blue", "green", "black"], "answer_index": 1},
    {"qa_id": "qa_3", "video_id": "v2", "clip_id": "c2", "category": "interaction", "question": "How do they greet?",
     "options": ["hug", "wave", "bow", "shake hands"], "answer_index": 3},
])


class _TolerantLoader(yaml.SafeLoader):
    pass


_TolerantLoader.add_constructor("!function", lambda loader, node: ("!function", loader.construct_scalar(node)))


@pytest.fixture()
def task(tmp_path, monkeypatch):
    """The task folder under a release root, which is the working directory (as its README says)."""
    folder = tmp_path / "haicbench" / "lmms_eval"
    folder.mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "haicbench")
    files = lmms_eval_task_files(benchmark_records(SPLIT_QA))
    for name, data in files.items():
        (folder / name).write_bytes(data)
    paths = {"yaml": folder / "haicbench.yaml", "utils": folder / "utils.py", "readme": folder / "README.md",
             "parquet": folder / "haicbench_test.parquet", "jsonl": folder / "haicbench_test.jsonl"}
    assert sorted(files) == sorted(p.name for p in paths.values())
    spec = importlib.util.spec_from_file_location("haicbench_utils", paths["utils"])
    utils = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(utils)
    return paths, utils


def test_records_give_letters_and_video_paths():
    records = benchmark_records(SPLIT_QA, {"c1": "/data/c1.mp4", "c2": "/data/c2.mp4"})
    assert [r["answer"] for r in records] == ["E", "B", "D"]
    assert records[0]["video"] == "/data/c1.mp4"
    assert benchmark_records(SPLIT_QA)[0]["video"] == "videos/c1.mp4"  # by default relative to the release root


def test_yaml_parses_and_points_at_the_exported_data(task):
    paths, _ = task
    config = yaml.load(paths["yaml"].read_text(), Loader=_TolerantLoader)
    assert config["task"] == "haicbench" and config["output_type"] == "generate_until"
    assert config["test_split"] == "test"
    assert config["doc_to_text"] == ("!function", "utils.haicbench_doc_to_text")
    assert config["process_results"] == ("!function", "utils.haicbench_process_results")
    data_file = config["dataset_kwargs"]["data_files"]["test"]
    assert data_file == "lmms_eval/haicbench_test.parquet"  # relative: resolved from the release root
    assert pq.read_table(data_file).num_rows == 3
    metrics = [m["metric"] for m in config["metric_list"]]
    assert metrics == ["interaction_accuracy", "action_details_accuracy", "action_sequence_accuracy",
                       "count_accuracy", "attribute_accuracy", "average_accuracy"]
    _, utils = task
    for entry in config["metric_list"]:  # every referenced aggregation exists in utils.py
        assert callable(getattr(utils, entry["aggregation"][1].split(".", 1)[1]))


def test_jsonl_and_parquet_hold_the_same_records(task):
    paths, _ = task
    from_jsonl = [json.loads(line) for line in paths["jsonl"].read_text().splitlines()]
    from_parquet = pq.read_table(paths["parquet"]).to_pylist()
    assert from_jsonl == from_parquet == benchmark_records(SPLIT_QA)


def test_the_release_holds_the_split_its_videos_and_the_task_folder():
    videos = pd.DataFrame({"video_id": ["v1", "v2"], "selection_rank": [1, 2]})
    release = haicbench_release_files(benchmark_records(SPLIT_QA), videos, clip_uris={"c1": "s3://m/clips/c1.mp4"})
    assert sorted(release) == ["README.md", "clips_manifest.jsonl", "haicbench_test.jsonl", "haicbench_test.parquet",
                               "haicbench_test_videos.parquet", "lmms_eval/README.md", "lmms_eval/haicbench.yaml",
                               "lmms_eval/haicbench_test.jsonl", "lmms_eval/haicbench_test.parquet",
                               "lmms_eval/utils.py"]
    assert release["haicbench_test.parquet"] == release["lmms_eval/haicbench_test.parquet"]
    assert b"data_files:\n    test: lmms_eval/haicbench_test.parquet" in release["lmms_eval/haicbench.yaml"]
    manifest = [json.loads(line) for line in release["clips_manifest.jsonl"].decode().splitlines()]
    assert manifest == [{"clip_id": "c1", "video": "videos/c1.mp4", "uri": "s3://m/clips/c1.mp4"},
                        {"clip_id": "c2", "video": "videos/c2.mp4", "uri": None}]
    card = release["README.md"].decode()
    assert card.split("---\n")[2].lstrip().startswith("# HAICBench") and "| questions | 3 |" in card and "| count questions | 1 |" in card
    assert "--include_path lmms_eval" in release["lmms_eval/README.md"].decode()
    assert pq.read_table(pa.BufferReader(release["haicbench_test_videos.parquet"])).num_rows == 2


def test_doc_to_text_letters_the_options_and_asks_for_a_letter(task, tmp_path, monkeypatch):
    _, utils = task
    doc = benchmark_records(SPLIT_QA)[0]
    assert utils.haicbench_doc_to_text(doc) == (
        "How many jumps?\nA. 1\nB. 2\nC. 3\nD. 4\nE. 5\nAnswer with the option's letter from the given choices directly.")
    assert utils.haicbench_doc_to_target(doc) == "E"
    with pytest.raises(utils.MissingClipError, match=r"clip c1 \(question qa_1\) not found at .*videos/c1.mp4.*"
                                                     r"HAICBENCH_VIDEO_ROOT"):
        utils.haicbench_doc_to_visual(doc)
    (tmp_path / "clips" / "videos").mkdir(parents=True)
    (tmp_path / "clips" / "videos" / "c1.mp4").write_bytes(b"clip")
    monkeypatch.setenv("HAICBENCH_VIDEO_ROOT", str(tmp_path / "clips"))
    assert utils.haicbench_doc_to_visual(doc) == [str(tmp_path / "clips" / "videos" / "c1.mp4")]


@pytest.mark.parametrize("response, letter", [("E", "E"), ("(E) 5", "E"), ("E.", "E"), ("The answer is E.", "E"),
                                              ("I think B", "B"), ("", None), ("no idea", None),
                                              ("A man jumps twice", None)])
def test_letter_extraction(task, response, letter):
    _, utils = task
    assert utils.extract_letter(response, 5) == letter


def test_letters_beyond_the_options_do_not_count(task):
    _, utils = task
    assert utils.extract_letter("E", 4) is None


def test_scores_and_per_category_aggregation(task):
    _, utils = task
    docs = benchmark_records(SPLIT_QA)
    answers = ["E", "C", "D"]  # right, wrong, right
    results = [utils.haicbench_process_results(doc, [answer]) for doc, answer in zip(docs, answers)]
    assert [r["count_accuracy"]["score"] for r in results] == [1.0, 0.0, 1.0]
    per_metric = {m: [r[m] for r in results] for m in results[0]}
    assert utils.haicbench_aggregate_count(per_metric["count_accuracy"]) == 100.0
    assert utils.haicbench_aggregate_attribute(per_metric["attribute_accuracy"]) == 0.0
    assert utils.haicbench_aggregate_interaction(per_metric["interaction_accuracy"]) == 100.0
    assert utils.haicbench_aggregate_average(per_metric["average_accuracy"]) == pytest.approx(200 / 3)


def test_scoring_reads_the_option_text_and_not_a_sentence_as_option_a(task):
    _, utils = task
    doc = benchmark_records(SPLIT_QA)[2]  # interaction: hug, wave, bow, shake hands; answer D
    assert utils.haicbench_process_results(doc, ["They shake hands."])["average_accuracy"]["score"] == 1.0
    assert utils.haicbench_process_results(doc, ["A man hugs"])["average_accuracy"]["predicted"] is None
