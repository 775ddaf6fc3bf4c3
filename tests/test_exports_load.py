"""The exports load where they are used: HAICTrain's folder as LLaVA-Video's --data_path and
--video_folder, HAICBench's release as an lmms-eval task run from its root (--include_path)."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml
from dagster import AssetKey, materialize

from haic_core.haicbench.export import benchmark_records, haicbench_release_files
from haic_assets.definitions import build_definitions
from haic_assets.platform.partitions import source_shards
from tests.helpers import dagster_instance, without_llm
from tests.llm_servers import SMALL_CLIP

CAPTION = ("There is 1 subject in the video. The subject is a young woman with long blonde hair, wearing a red top. "
           "She throws three balls into the air and catches them one after another.")
PARTITION = "webvid_sample__results_sample.csv"


def test_haic_train_release_is_a_llava_video_data_path_and_video_folder(tmp_path, monkeypatch, video):
    """Clip ids with ':' become file names without; every record's video is a relative path to a
    clip copied beside the records; the human turn carries LLaVA-NeXT's <image> token."""
    without_llm(monkeypatch)
    home = tmp_path / "home"
    monkeypatch.setenv("HAIC_HOME", str(home))
    defs = build_definitions()
    storage = defs.resources["storage"]
    clip_ids = ["webvid_sample:1001-0", "webvid_sample:1002-1"]
    for clip_id in clip_ids:
        storage.media().put_file(f"clips/{clip_id}.mp4", video(SMALL_CLIP))
    judged = pd.DataFrame({"clip_id": clip_ids, "clip_key": [f"clips/{c}.mp4" for c in clip_ids],
                           "caption": [CAPTION, CAPTION], "description": ["juggling", "juggling again"],
                           "video_id": ["webvid_sample:1001", "webvid_sample:1002"], "provider": ["gemini"] * 2,
                           "model": ["gemini-2.5-pro"] * 2, "prompt_version": ["caption_recaption/1"] * 2})
    storage.tables().write("caption_judgement", PARTITION, judged)
    with dagster_instance(home) as instance:
        instance.add_dynamic_partitions(source_shards.name, [PARTITION])
        result = materialize(list(defs.assets), instance=instance, partition_key=PARTITION, resources=defs.resources,
                             selection=[AssetKey("haic_train")], raise_on_error=False)
    assert result.success
    root = home / "exports" / "haic_train" / PARTITION
    records = json.loads((root / "llava_video_conversations.json").read_text())
    assert [r["id"] for r in records] == clip_ids
    for record in records:
        path = Path(record["video"])
        assert not path.is_absolute() and ":" not in record["video"] and path.parts[0] == "videos"
        assert (root / path).read_bytes() == video(SMALL_CLIP).read_bytes()  # --video_folder <root> finds it
        human, gpt = record["conversations"]
        assert human["from"] == "human" and human["value"].count("<image>") == 1 and "<video>" not in human["value"]
        assert gpt == {"from": "gpt", "value": CAPTION}
    manifest = [json.loads(line) for line in (root / "clips_manifest.jsonl").read_text().splitlines()]
    assert [m["video"] for m in manifest] == [r["video"] for r in records]
    # Where it came from: its key in the media store (a local store's absolute path is no export field).
    assert manifest[0]["uri"] == "clips/webvid_sample:1001-0.mp4"
    assert "--video_folder" in (root / "README.md").read_text()


class _LmmsEvalLoader(yaml.SafeLoader):
    """`!function utils.name` resolved the way lmms-eval does: a module beside the yaml."""


def _function(loader, node):
    module_name, function = loader.construct_scalar(node).rsplit(".", 1)
    spec = importlib.util.spec_from_file_location(module_name, Path(loader.name).parent / f"{module_name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, function)


_LmmsEvalLoader.add_constructor("!function", _function)

SPLIT_QA = pd.DataFrame([
    {"qa_id": "qa_1", "video_id": "omega:v1", "clip_id": "omega:v1-0", "category": "count",
     "question": "How many jumps?", "options": ["1", "2", "3", "4", "5"], "answer_index": 4},
    {"qa_id": "qa_2", "video_id": "omega:v2", "clip_id": "omega:v2-0", "category": "attribute",
     "question": "What cap?", "options": ["red", "blue", "green", "black"], "answer_index": 1},
])


def test_haicbench_release_runs_as_an_lmms_eval_task_from_its_root(tmp_path, monkeypatch, video):
    root = tmp_path / "release"
    records = benchmark_records(SPLIT_QA)
    for name, data in haicbench_release_files(records, pd.DataFrame({"video_id": ["omega:v1", "omega:v2"]})).items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    manifest = [json.loads(line) for line in (root / "clips_manifest.jsonl").read_text().splitlines()]
    assert all(":" not in m["video"] and not Path(m["video"]).is_absolute() for m in manifest)
    for entry in manifest[:1]:  # the first clip is present, the second missing
        (root / entry["video"]).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(video(SMALL_CLIP), root / entry["video"])
    monkeypatch.chdir(root)  # as lmms-eval/README.md says
    monkeypatch.delenv("HAICBENCH_VIDEO_ROOT", raising=False)
    with open("lmms_eval/haicbench.yaml") as handle:
        task = yaml.load(handle, Loader=_LmmsEvalLoader)
    docs = pq.read_table(task["dataset_kwargs"]["data_files"][task["test_split"]]).to_pylist()
    assert [d["qa_id"] for d in docs] == ["qa_1", "qa_2"]
    (visual,) = task["doc_to_visual"](docs[0])
    assert Path(visual).is_file()
    text = task["doc_to_text"](docs[0], task["lmms_eval_specific_kwargs"]["default"])
    assert text.startswith("How many jumps?\nA. 1") and text.endswith("directly.")
    assert task["process_results"](docs[0], ["(E)"])["count_accuracy"]["score"] == 1.0
    with pytest.raises(FileNotFoundError, match=r"clip omega:v2-0 \(question qa_2\) not found"):
        task["doc_to_visual"](docs[1])


def test_both_releases_load_with_hugging_face_datasets(tmp_path, monkeypatch, video):
    """`datasets.load_dataset(<release root>)` (offline, the folder's card says which Parquet file is the
    data): HAICTrain's train split and HAICBench's test split, each `video` relative to the root."""
    import datasets

    from haic_core.haic_train.export import captioned_clips, export_video_path, release_files, release_table
    from haic_core.haicbench.export import default_video_path

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    judged = pd.DataFrame({"clip_id": ["webvid:1001-0"], "clip_key": ["clips/webvid:1001-0.mp4"],
                           "caption": [CAPTION], "description": ["juggling"], "video_id": ["webvid:1001"],
                           "provider": ["gemini"], "model": ["gemini-1.5-pro"], "prompt_version": ["p/1"]})
    release = release_table(judged, "s3://haic/media")
    trees = {"train": release_files(release, captioned_clips(release, {}), "# HAICTrain\n"),
             "bench": haicbench_release_files(benchmark_records(SPLIT_QA), pd.DataFrame({"video_id": ["omega:v1",
                                                                                                     "omega:v2"]}))}
    loaded = {}
    for name, files in trees.items():
        root = tmp_path / name
        for path, data in files.items():
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            (root / path).write_bytes(data)
        loaded[name] = datasets.load_dataset(str(root), cache_dir=str(tmp_path / "cache"))
    train, bench = loaded["train"]["train"], loaded["bench"]["test"]
    assert list(loaded["train"]) == ["train"] and list(loaded["bench"]) == ["test"]
    assert train["clip_id"] == ["webvid:1001-0"] and train["video"] == [export_video_path("webvid:1001-0")]
    assert train["caption"] == [CAPTION]
    assert bench["qa_id"] == ["qa_1", "qa_2"] and bench["answer"] == ["E", "B"]
    assert bench["video"] == [default_video_path("omega:v1-0"), default_video_path("omega:v2-0")]
    assert train["video"][0].startswith("videos/webvid_1001-0-") and bench["video"][0].startswith("videos/omega_v1-0-")
    assert bench["options"][1] == ["red", "blue", "green", "black"]
    assert all(not Path(v).is_absolute() for v in list(train["video"]) + list(bench["video"]))
