"""HAICBench's release through Dagster: the 412-video / 2000-QA split over all batches, the dataset
statistics, and annotations and exports in S3. One batch's stages are tests/test_haicbench_assets.py."""

from __future__ import annotations

import base64
from datetime import datetime, timezone
from pathlib import Path

import boto3
import pandas as pd
import pytest
import yaml
from dagster import build_sensor_context

from haic_core.decisions import dropped, kept
from haic_core.ledger import ledger_rows
from haic_core.haicbench.qa import CATEGORIES
from tests.qa_pool_synth import synthetic_verified_qa_pool
from haic_assets.definitions import build_definitions
from haic_assets.haicbench.sensors import annotation_sensor
from haic_assets.platform.partitions import annotation_batches
from tests.bench_samples import BATCH, export_sample_task, land_sample_batch as land_batch
from tests.haicbench_jobs import (RAW_FILES, annotation_keys, failure_message, home, materialization_metadata,  # noqa: F401 (fixtures)
                                  run_batch, run_release, sample_task)
from tests.helpers import dagster_instance, ledger

SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "haicbench"


# ---- (d) the split over all batches -----------------------------------------------------------------


def write_pool(defs, instance, pool: pd.DataFrame, n_batches: int = 3) -> None:
    tables = defs.resources["storage"].tables()
    videos = sorted(pool["video_id"].unique())
    batches = [f"synthetic_batch_{i}" for i in range(n_batches)]
    instance.add_dynamic_partitions(annotation_batches.name, batches)
    for i, batch in enumerate(batches):
        part = pool[pool["video_id"].isin(videos[i::n_batches])]
        tables.write("qa_verified", batch, part.assign(model="synthetic", prompt_version="synthetic", batch=batch))


def test_split_of_the_synthetic_pool_is_412_videos_2000_qa_and_passes_its_checks(home):
    defs = build_definitions()
    with dagster_instance(home) as instance:
        write_pool(defs, instance, synthetic_verified_qa_pool(seed=0))
        result = run_release(defs, instance, selection=annotation_keys("haicbench_split"))
        assert result.success, failure_message(result)
    split = defs.resources["storage"].tables().read("haicbench_split", "all")
    assert split["video_id"].nunique() == 412 and len(split) == 2000
    assert split["category"].value_counts().to_dict() == {c: 400 for c in CATEGORIES}
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert {"split_sizes_exact", "categories_balanced", "no_haic_train_overlap", "answer_positions_balanced"} <= set(checks)
    assert all(checks.values()), checks
    out = home / "exports" / "haicbench"
    assert sum(1 for _ in (out / "haicbench_test.jsonl").open()) == 2000
    assert len(pd.read_parquet(out / "haicbench_test.parquet")) == 2000
    task = yaml.load((out / "lmms_eval" / "haicbench.yaml").read_text(), Loader=_FunctionLoader)
    assert task["task"] == "haicbench" and (out / task["dataset_kwargs"]["data_files"]["test"]).is_file()
    assert (out / "lmms_eval" / "utils.py").is_file()
    rows = ledger(home)
    split_rows = rows[rows["stage"] == "haicbench_split"]
    assert ((split_rows["item_kind"] == "qa") & (split_rows["verdict"] == "kept")).sum() == 2000
    assert ((split_rows["item_kind"] == "video") & (split_rows["verdict"] == "kept")).sum() == 412


class _FunctionLoader(yaml.SafeLoader):
    pass


_FunctionLoader.add_constructor("!function", lambda loader, node: loader.construct_scalar(node))


def test_a_pool_too_small_fails_naming_what_is_short(home):
    defs = build_definitions()
    with dagster_instance(home) as instance:
        write_pool(defs, instance, synthetic_verified_qa_pool(seed=1, n_videos=300, n_qa=1800), n_batches=2)
        result = run_release(defs, instance, selection=annotation_keys("haicbench_split"))
    assert not result.success
    message = failure_message(result)
    assert "cannot supply the HAICBench split" in message and "needed" in message


def test_the_train_overlap_check_fails_when_haic_train_shares_a_video(home):
    defs = build_definitions()
    with dagster_instance(home) as instance:
        write_pool(defs, instance, synthetic_verified_qa_pool(seed=0))
        config = {"ops": {"haicbench_split": {"config": {"exclude_haic_train": False}}}}
        assert run_release(defs, instance, config, selection=annotation_keys("haicbench_split")).success
        split = defs.resources["storage"].tables().read("haicbench_split", "all")
        shared = split.iloc[0]
        defs.resources["storage"].tables().write("haic_train", "webvid__x", pd.DataFrame(
            {"clip_id": ["other_clip"], "video_id": [shared["video_id"]], "caption": ["c"]}))
        result = run_release(defs, instance, config, selection=annotation_keys("haicbench_split"))
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert not checks["no_haic_train_overlap"].passed
    assert checks["no_haic_train_overlap"].metadata["shared_videos"].value == [shared["video_id"]]


# ---- (e) statistics ---------------------------------------------------------------------------------


def write_curation_tables(defs) -> None:
    """A small curation partition: ledger, clips and captions, as the accumulation stages write them."""
    tables = defs.resources["storage"].tables()
    partition = "webvid__shard0"
    decisions = [kept(f"v{i}") if i < 4 else dropped(f"v{i}", "description has no verb") for i in range(200)]
    clip_decisions = [kept(f"v0-c{i}", item_kind="clip", parent_id="v0") for i in range(2)]
    now = datetime(2025, 1, 1, tzinfo=timezone.utc)
    for stage, ds in (("raw_metadata", [kept(f"v{i}") for i in range(200)]), ("metadata_filtered", decisions),
                      ("action_filtered", clip_decisions)):
        tables.write(f"ledger/{stage}", partition, ledger_rows(ds, stage=stage, partition=partition, config_hash="x",
                                                               code_version="1", run_id="r", decided_at=now))
    tables.write("action_filtered", partition, pd.DataFrame({
        "clip_id": ["v0-c0", "v0-c1"], "video_id": ["v0", "v0"], "start_s": [0.0, 8.0], "end_s": [6.5, 19.0],
        "length_s": [6.5, 11.0]}))


def test_statistics_write_warehouse_tables_and_plots(home, sample_task):
    land_batch(home)
    defs = build_definitions()
    with dagster_instance(home) as instance:
        assert run_batch(defs, instance, run_config=RAW_FILES).success
        write_curation_tables(defs)
        result = run_release(defs, instance, selection=annotation_keys("dataset_statistics"))
        assert result.success, failure_message(result)
    meta = materialization_metadata(result, "dataset_statistics")
    previews = meta["previews"].value
    for name in ("clip durations", "caption lengths (haicbench)", "word cloud (haicbench)",
                 "QA per category (qa_verified)", "funnel webvid__shard0"):
        assert f"**{name}**" in previews
    png = base64.b64decode(previews.split("data:image/png;base64,")[1].split(")")[0])
    assert png.startswith(b"\x89PNG")
    assert "captions:haic_train" in meta["skipped"].value  # no machine captions in this home
    import duckdb

    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        funnel = con.execute("SELECT * FROM stats_funnel WHERE stage = 'action_filtered'").df()
        assert funnel["yield_pct_of_source"].iloc[0] == pytest.approx(1.0)  # 2 clips from 200 videos
        qa = con.execute("SELECT n_qa FROM stats_qa_per_category WHERE qa_table = 'qa_verified'").df()
        assert qa["n_qa"].sum() == 17


def test_statistics_on_an_empty_home_skip_everything_with_a_note(home):
    defs = build_definitions()
    with dagster_instance(home) as instance:
        result = run_release(defs, instance, selection=annotation_keys("dataset_statistics"))
        assert result.success, failure_message(result)
    meta = materialization_metadata(result, "dataset_statistics")
    assert "funnel" in meta["skipped"].value and "no plots" in meta["previews"].value


# ---- annotations and exports in S3 ------------------------------------------------------------


def test_batches_are_read_from_and_the_release_written_to_s3(home, monkeypatch, media_dir):
    """HAIC_ANNOTATIONS_URI and HAIC_EXPORTS_URI in S3 (moto, in process): the sensor, the stages and
    the release use the stores, not HAIC_HOME's folders."""
    from moto import mock_aws

    monkeypatch.setenv("HAIC_ANNOTATIONS_URI", "s3://haic-bench/annotations")
    monkeypatch.setenv("HAIC_EXPORTS_URI", "s3://haic-bench/exports")
    with mock_aws():
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="haic-bench")
        defs = build_definitions()
        storage = defs.resources["storage"]
        annotations = storage.annotations()
        for path in sorted(p for p in SAMPLES.rglob("*") if p.is_file() and p.name not in ("README.md", "clips.csv")):
            annotations.put_bytes(f"{BATCH}/{path.relative_to(SAMPLES).as_posix()}", path.read_bytes())
        export_sample_task(storage, media_dir)
        assert storage.exports().exists(f"annotation_tasks/{BATCH}/manifest.jsonl")  # the task, in S3 too
        with dagster_instance(home) as instance:
            with build_sensor_context(instance=instance, resources=defs.resources) as context:
                (request,) = annotation_sensor(context).run_requests
            assert request.run_config == RAW_FILES
            result = run_batch(defs, instance, run_config=RAW_FILES)
            assert result.success, failure_message(result)
            write_pool(defs, instance, synthetic_verified_qa_pool(seed=0))
            result = run_release(defs, instance, selection=annotation_keys("haicbench_split"))
            assert result.success, failure_message(result)
        assert len(storage.tables().read("qa_verified", BATCH)) == 17
        exports = storage.exports()
        assert not (home / "exports" / "haicbench").exists()
        assert sum(1 for _ in exports.get_bytes("haicbench/haicbench_test.jsonl").splitlines()) == 2000
        task = yaml.load(exports.get_bytes("haicbench/lmms_eval/haicbench.yaml"), Loader=_FunctionLoader)
        released = "s3://haic-bench/exports/haicbench"
        assert task["dataset_kwargs"]["data_files"]["test"] == "lmms_eval/haicbench_test.parquet"  # from the release root
        assert materialization_metadata(result, "haicbench_split")["export_dir"].value == released
