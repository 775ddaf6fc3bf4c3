"""The hand-written HAICBench sample batch (samples/haicbench/) the way a team runs it: its clips stand
as a source partition's kept clips (action_filtered rows, files in the shared test media), the batch's
annotation task exports them, then the captions, raw QA answers and reviews land in annotations/<batch>/."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd

from haic_assets.platform.cli import main

SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "haicbench"
BATCH = "sample_batch"
# The sample clips' partition: samples/haicbench/clips.csv as action_filtered would list them.
CLIPS_PARTITION = "haicbench_sample__clips.csv"


def seed_sample_clips(storage, media_dir: Path) -> pd.DataFrame:
    """action_filtered rows of the three sample clips (their files in the shared test media)."""
    clips = pd.read_csv(SAMPLES / "clips.csv", dtype=str)
    table = pd.DataFrame({"clip_id": clips["clip_id"], "video_id": clips["video_id"],
                          "description": clips["description"],
                          "clip_key": [f"clips/{name}" for name in clips["clip_file"]],
                          "clip_path": [str(media_dir / "videos" / name) for name in clips["clip_file"]]})
    storage.tables().write("action_filtered", CLIPS_PARTITION, table)
    return table


def export_sample_task(storage, media_dir: Path, batch: str = BATCH) -> None:
    """The sample clips as a source partition, and `haic annotation-task` exporting them for `batch`."""
    seed_sample_clips(storage, media_dir)
    assert main(["annotation-task", batch, "--partition", CLIPS_PARTITION]) == 0


def land_sample_batch(home: Path, batch: str = BATCH, with_raw: bool = True, with_reviews: bool = True) -> Path:
    folder = home / "annotations" / batch
    folder.mkdir(parents=True)
    shutil.copyfile(SAMPLES / "captions.jsonl", folder / "captions.jsonl")
    if with_raw:
        shutil.copytree(SAMPLES / "qa_raw", folder / "qa_raw")
    if with_reviews:
        shutil.copyfile(SAMPLES / "reviews.csv", folder / "reviews.csv")
    return folder
