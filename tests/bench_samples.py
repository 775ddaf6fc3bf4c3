"""The hand-written HAICBench sample batch (samples/haicbench/) the way a team runs it: its clips stand
as a source partition's kept clips (action_filtered rows, files in the shared test media), the batch's
annotation task exports them, then the captions, raw QA answers and reviews land in annotations/<batch>/."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd

from haic_cli.main import main

SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "haicbench"
BATCH = "sample_batch"
# The sample clips' partition: samples/haicbench/clips.csv as action_filtered would list them.
CLIPS_PARTITION = "haicbench_sample__clips.csv"


def seed_sample_clips(storage, media_dir: Path) -> pd.DataFrame:
    """action_filtered rows of the three sample clips (their files in the shared test media, whole files
    as clips, with the facts their probe gives; no motion measured)."""
    from haic_assets.accumulation.action_filtered import FILTERED_COLUMNS
    from haic_resources.video.probe import probe_video_in_process

    rows = []
    for clip in pd.read_csv(SAMPLES / "clips.csv", dtype=str).itertuples(index=False):
        path = media_dir / "videos" / clip.clip_file
        probe = probe_video_in_process(str(path))
        rows.append({"clip_id": clip.clip_id, "video_id": clip.video_id, "start_s": 0.0, "end_s": probe.duration_s,
                     "length_s": probe.duration_s, "fps": probe.fps, "width": probe.width, "height": probe.height,
                     "description": clip.description, "keypoint_l1": None, "affine_residual": None,
                     "clip_key": f"clips/{clip.clip_file}", "clip_path": str(path), "clip_bytes": path.stat().st_size})
    table = pd.DataFrame(rows, columns=FILTERED_COLUMNS).astype({"keypoint_l1": float, "affine_residual": float})
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
