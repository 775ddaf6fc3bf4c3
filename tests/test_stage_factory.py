"""The stage factory: one shape for every stage, settings read when definitions are built, the
README's worked example stage, and a partition that fails keeps its recorded decisions."""

from __future__ import annotations

import pandas as pd
import pytest
from dagster import Config, DagsterInstance, asset, materialize

from haic_core.decisions import error
from haic_assets.platform.partitions import source_shards
from haic_assets.platform.resources import build_resources
from haic_platform.settings import Settings, load_settings
from haic_platform.stage import StageFailure, StageResult, partitioned_stage
from haic_assets.stages import STAGE_NAMES, settings_fields
from samples.stages.frame_rate_filtered import frame_rate_filtered
from tests.helpers import REPO_ROOT, ledger

PARTITION = "src__shard.csv"
KNOWN = {"frame_rate_filtered": {"min_fps"}, "clips": {"min_length_s"}}


@asset(partitions_def=source_shards, io_manager_key="tables", name="videos")
def stub_videos() -> pd.DataFrame:
    return pd.DataFrame({"video_id": ["src:phone", "src:slides", "src:film"], "fps": [29.97, 1.0, 23.976]})


def run(tmp_path, monkeypatch, *assets):
    monkeypatch.setenv("HAIC_HOME", str(tmp_path / "home"))
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(source_shards.name, [PARTITION])
    result = materialize(list(assets), instance=instance, partition_key=PARTITION,
                         resources=build_resources(STAGE_NAMES), raise_on_error=False)
    return result, ledger(tmp_path / "home")


def write_settings(tmp_path, text: str):
    path = tmp_path / "settings.yaml"
    path.write_text(text)
    return path


def test_the_worked_example_stage_records_every_video_with_its_frame_rate(tmp_path, monkeypatch):
    result, book = run(tmp_path, monkeypatch, stub_videos, frame_rate_filtered.build(Settings()))
    assert result.success
    rows = book[book["stage"] == "frame_rate_filtered"].sort_values("item_id")
    assert list(zip(rows["item_id"], rows["verdict"], rows["reason"], rows["value"], rows["threshold"])) == [
        ("src:film", "kept", "fps=23.98 >= 15", 23.976, 15.0),
        ("src:phone", "kept", "fps=29.97 >= 15", 29.97, 15.0),
        ("src:slides", "dropped", "fps=1.00 < 15", 1.0, 15.0),
    ]
    assert set(rows["partition"]) == {PARTITION} and set(rows["code_version"]) == {"1"}
    metadata = result.asset_materializations_for_node("frame_rate_filtered")[0].metadata
    assert (metadata["items"].value, metadata["kept"].value, metadata["dropped"].value, metadata["rows"].value) == (3, 2, 1, 2)
    assert [r.data["video_id"] for r in metadata["preview"].records] == ["src:phone", "src:film"]
    assert metadata["dagster/row_count"].value == 2
    assert [(c.name, c.type, c.description) for c in metadata["dagster/column_schema"].schema.columns] == [
        ("video_id", "str", "'<source>:<native id>'"), ("fps", "float64", "frame rate of the video stream")]
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert checks == {"error_rate_within_limit": True, "one_ledger_row_per_item": True}


def test_a_setting_becomes_the_config_default_and_changes_the_code_version(tmp_path):
    path = write_settings(tmp_path, "frame_rate_filtered:\n  min_fps: 24\n")
    tuned = frame_rate_filtered.build(load_settings(KNOWN, path))
    plain = frame_rate_filtered.build(Settings())
    key = plain.keys_by_output_name["frame_rate_filtered"]
    assert plain.code_versions_by_key[key] != tuned.code_versions_by_key[key]
    config_field = tuned.op.config_schema.config_type.fields["min_fps"]
    assert config_field.default_value == 24


@pytest.mark.parametrize("text, message", [
    ("clipz:\n  min_length_s: 4\n", r"settings.yaml: unknown section 'clipz'"),
    ("clips:\n  min_lenght_s: 4\n", r"settings.yaml: clips.min_lenght_s is not a setting of stage clips"),
    ("clips:\n  partitions_per_run: 2\n", r"'partitions_per_run' is a platform setting: put it under 'platform:'"),
    ("platform:\n  partitions_per_run: zero\n", r"settings.yaml: platform.partitions_per_run: "),
    ("[1, 2]\n", r"settings.yaml: expected a mapping"),
])
def test_a_bad_settings_file_names_the_file_and_the_key(tmp_path, text, message):
    with pytest.raises(ValueError, match=message):
        load_settings(KNOWN, write_settings(tmp_path, text))


def test_a_setting_of_the_wrong_type_names_the_stage_and_key(tmp_path):
    settings = load_settings(KNOWN, write_settings(tmp_path, "frame_rate_filtered:\n  min_fps: fast\n"))
    with pytest.raises(ValueError, match=r"settings.yaml: frame_rate_filtered.min_fps: "):
        frame_rate_filtered.build(settings)


def test_platform_settings_have_their_own_section(tmp_path):
    settings = load_settings(KNOWN, write_settings(tmp_path, "platform:\n  partitions_per_run: 2\n"))
    assert settings.platform.partitions_per_run == 2
    assert frame_rate_filtered.build(settings).backfill_policy.max_partitions_per_run == 2
    assert frame_rate_filtered.build(Settings()).backfill_policy.max_partitions_per_run == 4


class NoConfig(Config):
    pass


@partitioned_stage("unreadable", NoConfig, group="accumulation")
def unreadable(stage, config) -> StageResult:
    """Fails its partition after recording why."""
    raise StageFailure("shard src/shard.csv: not a CSV", [error("shard:src__shard.csv", "not a CSV", item_kind="shard")])


def test_a_failed_partition_keeps_its_decisions_and_fails_with_the_reason(tmp_path, monkeypatch):
    result, book = run(tmp_path, monkeypatch, unreadable.build(Settings()))
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.error
    assert "shard src/shard.csv: not a CSV" in failure.message
    assert book[["stage", "item_id", "verdict", "reason"]].values.tolist() == [
        ["unreadable", "shard:src__shard.csv", "error", "not a CSV"]]


def test_every_stage_describes_the_columns_it_declares():
    from haic_assets.stages import STAGES

    assert [s.name for s in STAGES if not s.column_docs] == []
    assert {s.name: sorted(set(s.columns) - set(s.column_docs)) for s in STAGES if set(s.columns) - set(s.column_docs)} == {}


def test_the_registry_lists_the_paper_stages_in_order_and_shared_settings_once():
    assert STAGE_NAMES == ("raw_metadata", "metadata_filtered", "videos", "clips", "human_presence", "pose_tracks",
                           "action_filtered", "captions", "caption_judgement", "haic_train", "haic_train_release",
                           "annotation_tasks", "bench_captions", "qa_pairs", "qa_verified", "haicbench_content_leakage",
                           "haicbench_split", "dataset_statistics", "eval_answers", "eval_leaderboard",
                           "threshold_whatif")
    fields = settings_fields()
    assert "min_short_side_px" in fields["metadata_filtered"] and "min_short_side_px" not in fields["videos"]
    assert "pose_fps" not in fields["human_presence"] and "pose_fps" in fields["pose_tracks"]


def test_the_readme_shows_the_example_stage_as_it_is_in_the_repository():
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme[readme.index("## Adding a stage"):]
    shown = section[section.index("```python") + len("```python"):section.index("```", section.index("```python") + 9)]
    assert shown.strip() in (REPO_ROOT / "samples" / "stages" / "frame_rate_filtered.py").read_text()
