"""A HAICTrain release of two partitions is one dataset under LLaVA-NeXT's loading rules: its data yaml
read as LazySupervisedDataset reads it (json_path relative to where training runs, sampling_strategy,
each video at os.path.join(--video_folder, video)) gives every caption of both partitions, and every
sample's video exists and decodes. No export field holds a local path."""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pytest
import yaml
from dagster import AssetKey, materialize

from haic_assets.definitions import build_definitions
from haic_assets.platform.partitions import source_shards
from haic_core.haic_train.gathered_release import DATA_YAML, llava_next_samples
from haic_resources.video.av_open import open_input
from tests.helpers import dagster_instance, without_llm

CAPTION = ("There is 1 subject in the video. The subject is a young woman with long blonde hair, wearing a red top. "
           "She throws three balls into the air and catches them one after another.")
PARTITIONS = {"webvid__part-0001.csv": ["sam2_juggle_1p.mp4", "sam2_dog_1p.mp4"],
              "omega__part-0002.parquet": ["mmaction2_basketball_2p.mp4", "sam2_coffee_torso_hands.mp4"]}


def seed_partition(storage, partition: str, files: list[str], video) -> list[str]:
    source = partition.split("__")[0]
    clip_ids = [f"{source}:{name}-0a1b2c3d4e" for name in files]
    for clip_id, name in zip(clip_ids, files):
        storage.media().put_file(f"clips/{clip_id}.mp4", video(name))
    storage.tables().write("caption_judgement", partition, pd.DataFrame({
        "clip_id": clip_ids, "clip_key": [f"clips/{c}.mp4" for c in clip_ids], "caption": [CAPTION] * len(files),
        "description": files, "video_id": [f"{source}:{n}" for n in files], "provider": ["gemini"] * len(files),
        "model": ["gemini-2.5-pro"] * len(files), "prompt_version": ["caption_recaption/1"] * len(files)}))
    return clip_ids


@contextmanager
def trained(tmp_path, monkeypatch, video, partitions: dict[str, list[str]]):
    """A home with `partitions`' clips seeded and haic_train materialized for each: (home, defs,
    instance, clip ids)."""
    without_llm(monkeypatch)
    home = tmp_path / "home"
    monkeypatch.setenv("HAIC_HOME", str(home))
    defs = build_definitions()
    storage = defs.resources["storage"]
    clip_ids = [c for p, files in partitions.items() for c in seed_partition(storage, p, files, video)]
    with dagster_instance(home) as instance:
        instance.add_dynamic_partitions(source_shards.name, list(partitions))
        for partition in partitions:
            assert materialize(list(defs.assets), instance=instance, partition_key=partition, resources=defs.resources,
                               selection=[AssetKey("haic_train")]).success
        yield home, defs, instance, clip_ids


def run_release(defs, instance, config: dict):
    return defs.resolve_job_def("train_release").execute_in_process(
        instance=instance, run_config={"ops": {"haic_train_release": {"config": config}}}, raise_on_error=False)


@pytest.fixture
def release(tmp_path, monkeypatch, video):
    with trained(tmp_path, monkeypatch, video, PARTITIONS) as (home, defs, instance, clip_ids):
        result = run_release(defs, instance, {"name": "haic_train_v1", "partitions": list(PARTITIONS)})
    return home, result, clip_ids


def test_two_partitions_train_as_one_dataset_under_llava_next_rules(release, monkeypatch):
    home, result, clip_ids = release
    assert result.success
    root = home / "exports" / "haic_train_releases" / "haic_train_v1"
    monkeypatch.chdir(root)  # LLaVA-NeXT opens json_path relative to where it runs
    samples = llava_next_samples(DATA_YAML, ".", lambda path: Path(path).read_text(encoding="utf-8"))
    assert sorted(r["id"] for r, _ in samples) == sorted(clip_ids)
    assert len({path for _, path in samples}) == 4 and sorted(p.name for p in (root / "videos").iterdir()) == sorted(
        Path(path).name for _, path in samples)
    for record, path in samples:
        assert record["conversations"][1]["value"] == CAPTION
        with open_input(path) as container:  # decodes to the end
            frames = sum(1 for _ in container.decode(video=0))
        assert frames > 100, path


def test_no_export_field_holds_a_local_path(release):
    home, _, clip_ids = release
    root = home / "exports" / "haic_train_releases" / "haic_train_v1"
    rows = pd.read_parquet(root / "haic_train.parquet")
    assert sorted(rows["source_partition"].unique()) == sorted(PARTITIONS)
    values = [str(v) for v in rows.to_numpy().ravel()]
    values += [line for line in (root / "clips_manifest.jsonl").read_text().splitlines()]
    values += [json.dumps(r) for r in json.loads((root / "llava_video_conversations.json").read_text())]
    assert not [v for v in values if str(home) in v or v.startswith("/")]
    assert yaml.safe_load((root / DATA_YAML).read_text()) == {
        "datasets": [{"json_path": "llava_video_conversations.json", "sampling_strategy": "all"}]}
    assert (root / "README.md").read_text().startswith("---\npretty_name: HAICTrain (haic_train_v1)")


def test_a_clip_missing_from_the_media_store_fails_the_release(tmp_path, monkeypatch, video):
    partitions = {"webvid__part-0001.csv": ["sam2_juggle_1p.mp4"]}
    with trained(tmp_path, monkeypatch, video, partitions) as (home, defs, instance, clip_ids):
        (home / "media" / f"clips/{clip_ids[0]}.mp4").unlink()
        result = run_release(defs, instance, {"name": "v2"})
    assert not result.success
    failure = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"][0]
    assert "not in the media store" in failure.event_specific_data.error.message
