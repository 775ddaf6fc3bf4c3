"""HAICBench's lineage starts at the accumulation, as in the paper: a source shard's kept clips ->
the batch's annotation task -> human captions -> QA -> review -> the split; `haic why` on a QA of the
split walks that trail back to the source video's metadata row. And the release refuses benchmark
clips whose footage is in HAICTrain under another id, recording the pair."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest
from dagster import AssetKey

from haic_core.haicbench.qa import CATEGORIES
from haic_assets.definitions import build_definitions
from haic_cli import main as cli
from tests.timing import limit
from tests.bench_samples import BATCH, SAMPLES, export_sample_task, land_sample_batch
from tests.helpers import SAMPLE_PARTITION, dagster_instance, home_without_llm, land_sample, ledger, run_partition

RAW_FILES = {"ops": {"qa_pairs": {"config": {"source": "raw_files"}}}}


@pytest.fixture
def home(tmp_path, monkeypatch):
    return home_without_llm(tmp_path, monkeypatch)


def run_batch(defs, instance, batch: str, run_config=None, selection=None):
    return defs.resolve_job_def("haicbench_batch").execute_in_process(
        partition_key=batch, instance=instance, run_config=run_config or {}, raise_on_error=False,
        asset_selection=[AssetKey(s) for s in selection] if selection else None)


def approve_everything(home, batch: str, qa: pd.DataFrame) -> None:
    """The review sheet of two reviewers who approve every QA of the batch."""
    rows = [{"clip_id": r.clip_id, "category": r.category, "question": r.question, "reviewer_id": reviewer,
             "decision": "approve"} for r in qa.itertuples() for reviewer in ("rev-1", "rev-2")]
    pd.DataFrame(rows).to_csv(home / "annotations" / batch / "reviews.csv", index=False)


def split_config(verified: pd.DataFrame, n_videos: int) -> dict:
    quota = {c: int((verified["category"] == c).sum()) for c in CATEGORIES}
    return {"ops": {"haicbench_split": {"config": {"n_videos": n_videos, "n_qa": sum(quota.values()),
                                                   "category_quota": quota}}}}


def leakage_config(run_config: dict) -> dict:
    """The leakage step's per-clip hashing limit scaled as every test limit is (tests/timing.py): on a
    loaded machine the default 60 s fired and the clips were errors, not compared."""
    return {"ops": {**run_config["ops"], "haicbench_content_leakage": {"config": {"timeout_s": limit(60)}}}}


@pytest.mark.slow
def test_haic_why_on_a_split_qa_walks_back_to_the_source_metadata_row(home, capsys):
    """The sample shard through the accumulation (its juggling clip is kept), an annotation task of that
    shard, a caption and raw QA for the kept clip, two approvals each, the split of that one video."""
    land_sample(home)
    defs = build_definitions()
    with dagster_instance(home) as instance:
        assert run_partition(defs, instance, SAMPLE_PARTITION).success
    (clip_id,) = defs.resources["storage"].tables().read("action_filtered", SAMPLE_PARTITION)["clip_id"]
    assert cli.main(["annotation-task", "juggling", "--partition", SAMPLE_PARTITION]) == 0
    task = home / "exports" / "annotation_tasks" / "juggling"
    (entry,) = [json.loads(line) for line in (task / "manifest.jsonl").read_text().splitlines()]
    assert entry["clip_id"] == clip_id and entry["source_partition"] == SAMPLE_PARTITION
    assert (task / entry["video"]).stat().st_size > 0 and entry["length_s"] > 5  # the clip and its facts

    folder = home / "annotations" / "juggling"
    (folder / "qa_raw").mkdir(parents=True)
    caption = json.loads((SAMPLES / "captions.jsonl").read_text().splitlines()[0])  # written for this footage
    (folder / "captions.jsonl").write_text(json.dumps({**caption, "clip_id": clip_id}) + "\n")
    for raw in SAMPLES.glob("qa_raw/sam2_juggle_1p__*.txt"):
        shutil.copyfile(raw, folder / "qa_raw" / raw.name.replace("sam2_juggle_1p", clip_id))
    with dagster_instance(home) as instance:
        assert run_batch(defs, instance, "juggling", RAW_FILES, ["bench_captions", "qa_pairs"]).success
        approve_everything(home, "juggling", defs.resources["storage"].tables().read("qa_pairs", "juggling"))
        assert run_batch(defs, instance, "juggling", selection=["qa_verified"]).success
        verified = defs.resources["storage"].tables().read("qa_verified", "juggling")
        release = defs.resolve_job_def("haicbench_release").execute_in_process(
            instance=instance, run_config=split_config(verified, 1), raise_on_error=False)
        assert release.success
    split = defs.resources["storage"].tables().read("haicbench_split", "all")
    qa_id = split["qa_id"].iloc[0]

    capsys.readouterr()
    assert cli.main(["why", qa_id]) == 0
    out = capsys.readouterr().out
    print(out)
    stages = [line.split()[0] for line in out.splitlines()[1:] if not line.strip().startswith("contact sheet")]
    walk = ["raw_metadata", "metadata_filtered", "videos", "clips", "human_presence", "pose_tracks",
            "action_filtered", "annotation_tasks", "bench_captions", "qa_pairs", "qa_verified", "haicbench_split"]
    found = iter(stages)
    assert all(stage in found for stage in walk), stages  # one order, the pipeline's: from the source to the QA
    assert stages[-1] == "haicbench_split" and out.splitlines()[-1].split()[2] == qa_id
    assert any(line.split()[:4] == ["raw_metadata", "video", "webvid_sample:1001", "KEPT"] for line in out.splitlines())
    assert "exported for annotation in batch juggling" in out


@pytest.mark.slow
def test_two_copies_of_a_sample_clip_under_different_ids_are_refused_by_the_split(home, media_dir, tmp_path):
    """HAICTrain holds the dog clip's footage as webvid_other:9-0 (another id, another video id, so the id
    check cannot see it); the release's leakage step finds it and the split leaves the dog's QA out."""
    land_sample_batch(home)
    defs = build_definitions()
    tables = defs.resources["storage"].tables()
    export_sample_task(defs.resources["storage"], media_dir)
    copy = tmp_path / "reupload.mp4"
    shutil.copyfile(media_dir / "videos" / "sam2_dog_1p.mp4", copy)
    tables.write("haic_train", "webvid_other__a.csv", pd.DataFrame({"clip_id": ["webvid_other:9-0"],
                                                                    "video_id": ["webvid_other:9"]}))
    tables.write("action_filtered", "webvid_other__a.csv", pd.DataFrame({
        "clip_id": ["webvid_other:9-0"], "video_id": ["webvid_other:9"], "clip_path": [str(copy)]}))
    with dagster_instance(home) as instance:
        assert run_batch(defs, instance, BATCH, RAW_FILES).success
        verified = tables.read("qa_verified", BATCH)
        kept = verified[verified["clip_id"] != "sam2_dog_1p"]
        release = defs.resolve_job_def("haicbench_release").execute_in_process(  # the statistics aside
            instance=instance, run_config=leakage_config(split_config(kept, 2)), raise_on_error=False,
            asset_selection=[AssetKey("haicbench_content_leakage"), AssetKey("haicbench_split")])
        assert release.success
    leaks = tables.read("haicbench_content_leakage", "all")
    assert leaks[["bench_clip_id", "train_clip_id"]].values.tolist() == [["sam2_dog_1p", "webvid_other:9-0"]]
    split = tables.read("haicbench_split", "all")
    assert set(split["clip_id"]) == {"sam2_juggle_1p", "mmaction2_basketball_2p"} and len(split) == len(kept)
    rows = ledger(home)
    refused = rows[(rows["stage"] == "haicbench_split") & (rows["parent_id"] == "sam2_dog_1p")]
    assert len(refused) == (verified["clip_id"] == "sam2_dog_1p").sum() > 0
    assert set(refused["reason"]) == {"clip shows the same footage as HAICTrain clip webvid_other:9-0"}
    assert set(refused["verdict"]) == {"dropped"} and set(refused["metric"]) == {"matched_share"}
    assert json.loads(refused["detail"].iloc[0])["train_clip_id"] == "webvid_other:9-0"
