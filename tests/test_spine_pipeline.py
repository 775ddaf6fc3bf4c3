"""The spine end to end: sample shard -> real Dagster instance -> Parquet tables + ledger -> CLI."""

from __future__ import annotations

import duckdb
import pytest
from dagster import AssetKey, build_sensor_context

from haic_cli import main as cli
from haic_assets.definitions import build_definitions
from haic_assets.platform.partitions import source_shards
from tests.helpers import SAMPLE_PARTITION, dagster_instance, land_sample, ledger, run_partition

SPINE = [AssetKey("raw_metadata"), AssetKey("metadata_filtered")]


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("HAIC_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def spine_verdicts(home):
    rows = ledger(home)
    rows = rows[rows["stage"].isin(["raw_metadata", "metadata_filtered"])]
    return {(r.stage, r.item_id): (r.verdict, r.reason) for r in rows.itertuples()}


def test_sample_ledger_rows_are_exact(home):
    land_sample(home)
    defs = build_definitions()
    with dagster_instance(home) as instance:
        result = run_partition(defs, instance, SAMPLE_PARTITION, selection=SPINE)
        assert result.success
    # The catalog's column schema says what every column holds, as the stages declare it.
    for stage in ("raw_metadata", "metadata_filtered"):
        schema = result.asset_materializations_for_node(stage)[0].metadata["dagster/column_schema"].schema
        assert [c.name for c in schema.columns if not c.description] == []
    columns = {c.name: c for c in schema.columns}
    assert (columns["resolution_deferred"].type, columns["resolution_deferred"].description) == (
        "bool", "the metadata gives no resolution: the videos stage applies the rule to the probe")
    verdicts = spine_verdicts(home)
    assert verdicts == {
        ("metadata_filtered", "webvid_sample:1001"): ("kept", "has a verb; resolution 1280x720"),
        ("metadata_filtered", "webvid_sample:1002"): (
            "kept", "has a verb; resolution unknown: deferred to the video probe"),
        ("metadata_filtered", "webvid_sample:1003"): ("dropped", "low resolution 176x144: short side 144 < 240 px"),
        ("metadata_filtered", "webvid_sample:1004"): ("dropped", "description has no verb"),
        ("raw_metadata", "webvid_sample:1001"): ("kept", "parsed"),
        ("raw_metadata", "webvid_sample:results_sample.csv#row7"): (
            "dropped", "duplicate id webvid_sample:1001 (row 7; the first row with this id is kept)"),
        ("raw_metadata", "webvid_sample:1006"): ("dropped", "unparseable duration 'about ten seconds'"),
        ("raw_metadata", "webvid_sample:1008"): (
            "dropped", "local uri '../../../../../../etc/passwd' resolves outside the allowed roots"),
        ("raw_metadata", "webvid_sample:results_sample.csv#row5"): ("dropped", "missing id"),
        ("raw_metadata", "webvid_sample:1002"): ("kept", "parsed"),
        ("raw_metadata", "webvid_sample:1003"): ("kept", "parsed"),
        ("raw_metadata", "webvid_sample:1004"): ("kept", "parsed"),
    }


def test_materializing_the_same_partition_twice_leaves_the_same_rows(home):
    land_sample(home)
    defs = build_definitions()
    with dagster_instance(home) as instance:
        assert run_partition(defs, instance, SAMPLE_PARTITION, selection=SPINE).success
        first = ledger(home)
        assert run_partition(defs, instance, SAMPLE_PARTITION, selection=SPINE).success
        second = ledger(home)
    stable = ["item_id", "stage", "verdict", "reason", "metric", "value", "threshold", "config_hash", "partition"]
    assert len(first) == len(second) == 12
    assert first[stable].equals(second[stable])
    assert first["run_id"].nunique() == 1 and second["run_id"].nunique() == 1
    assert set(first["run_id"]) != set(second["run_id"])
    tables = build_definitions().resources["storage"].tables()
    assert tables.partitions("raw_metadata") == [SAMPLE_PARTITION]
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as db:  # views for every table
        assert db.execute("SELECT count(*) FROM metadata_filtered").fetchone() == (2,)
        assert db.execute("SELECT sum(total) FROM funnel").fetchone() == (12,)
    assert len(tables.read("metadata_filtered", SAMPLE_PARTITION)) == 2


def evaluate_sensor(defs, instance, cursor=None):
    with build_sensor_context(instance=instance, resources=defs.resources, cursor=cursor) as context:
        return defs.resolve_sensor_def("landing_sensor")(context)


def test_the_sensor_adds_a_partition_for_a_new_shard_and_its_run_materializes_it(home):
    defs = build_definitions()
    with dagster_instance(home) as instance:
        first = evaluate_sensor(defs, instance)
        assert not first.run_requests and not first.dynamic_partitions_requests
        partition = land_sample(home)  # a new shard file arrives in the landing folder
        (home / "landing" / "webvid_sample" / "notes.txt").write_text("not a shard")
        result = evaluate_sensor(defs, instance, first.cursor)
        assert [r.partition_key for r in result.run_requests] == [partition]
        assert result.dynamic_partitions_requests[0].partition_keys == [partition]
        instance.add_dynamic_partitions(source_shards.name, [partition])
        job = defs.resolve_job_def("curate_source")
        run = job.execute_in_process(partition_key=result.run_requests[0].partition_key, instance=instance,
                                     asset_selection=SPINE, tags=result.run_requests[0].tags)
        assert run.success
        materialized = instance.get_latest_materialization_event(AssetKey("metadata_filtered"))
        assert materialized.dagster_event.partition == partition
        # The cursor remembers the shard: the next tick adds nothing and requests nothing.
        assert not evaluate_sensor(defs, instance, result.cursor).run_requests


def test_haic_why_names_stage_reason_value_and_threshold(home, capsys):
    land_sample(home)
    defs = build_definitions()
    with dagster_instance(home) as instance:
        assert run_partition(defs, instance, SAMPLE_PARTITION, selection=SPINE).success
    assert cli.main(["why", "webvid_sample:1003"]) == 0
    out = capsys.readouterr().out
    assert "metadata_filtered" in out and "DROPPED" in out
    assert "low resolution 176x144: short side 144 < 240 px" in out
    assert "[short_side_px=144, threshold 240]" in out
    assert cli.main(["funnel"]) == 0
    funnel = capsys.readouterr().out
    # a row without an id, and a repeated one, are metadata rows: the videos are counted apart
    assert "webvid_sample      raw_metadata        video     4        2      0      6" in funnel
    assert "webvid_sample      raw_metadata metadata_row     0        2      0      2" in funnel
    assert "webvid_sample metadata_filtered        video     2        2      0      4" in funnel


@pytest.mark.parametrize("content, reason", [
    (b"", "is empty (0 bytes)"),
    (b"videoid,contentUrl,duration,page_dir,name\n", "has no rows"),
    (b"\x89PNG\r\n\x1a\n not a table", "is not valid csv"),
    (b"id;label\n1;x\n", "lacks column(s) ['videoid', 'name']"),
])
def test_an_unreadable_shard_fails_its_run_with_the_reason_in_the_ledger(home, tmp_path, content, reason):
    bad = tmp_path / "broken.csv"
    bad.write_bytes(content)
    partition = land_sample(home, csv=bad)
    defs = build_definitions()
    with dagster_instance(home) as instance:
        result = run_partition(defs, instance, partition, selection=SPINE)
    assert not result.success
    rows = ledger(home)
    assert rows["item_id"].tolist() == [f"shard:{partition}"]
    assert rows["verdict"].tolist() == ["error"] and reason in rows["reason"].iloc[0]
