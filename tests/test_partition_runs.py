"""Backfills run several source shards per run: each gets its own tables and ledger rows."""

from __future__ import annotations

from dagster import AssetKey

from haic_assets.definitions import build_definitions
from haic_assets.platform.partitions import source_shards
from tests.helpers import SAMPLE_CSV, dagster_instance, land_sample, ledger

SPINE = [AssetKey("raw_metadata"), AssetKey("metadata_filtered"), AssetKey("videos"), AssetKey("clips")]


def test_one_run_materializes_a_range_of_partitions_each_on_its_own(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("HAIC_HOME", str(home))
    first = land_sample(home)
    rows = SAMPLE_CSV.read_text().splitlines()
    second_csv = tmp_path / "results_second.csv"
    second_csv.write_text("\n".join([rows[0], rows[3], rows[4]]) + "\n")  # low-res and no-verb rows only
    second = land_sample(home, csv=second_csv)
    defs = build_definitions()
    assert defs.resolve_assets_def("metadata_filtered").backfill_policy.max_partitions_per_run == 4
    with dagster_instance(home) as instance:
        instance.add_dynamic_partitions(source_shards.name, [first, second])
        job = defs.resolve_job_def("curate_source")
        result = job.execute_in_process(instance=instance, asset_selection=SPINE, tags={
            "dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": second})
        assert result.success
        for key in SPINE:
            done = {e.dagster_event.partition for e in instance.fetch_materializations(key, limit=10).records
                    for e in [e.event_log_entry]}
            assert done == {first, second}, key
        # Each partition's materialization carries its own counts, not a sum over the run's partitions.
        counts = {}
        for record in instance.fetch_materializations(AssetKey("metadata_filtered"), limit=10).records:
            metadata = record.event_log_entry.asset_materialization.metadata
            counts[record.event_log_entry.dagster_event.partition] = (metadata["kept"].value, metadata["dropped"].value)
        assert counts == {first: (2, 2), second: (0, 2)}
    book = ledger(home)
    filtered = book[book["stage"] == "metadata_filtered"]
    assert sorted(filtered.loc[filtered["partition"] == first, "verdict"]) == ["dropped", "dropped", "kept", "kept"]
    assert sorted(filtered.loc[filtered["partition"] == second, "verdict"]) == ["dropped", "dropped"]
    tables = defs.resources["storage"].tables()
    assert len(tables.read("metadata_filtered", first)) == 2 and len(tables.read("metadata_filtered", second)) == 0
    assert len(tables.read("clips", first)) == 2 and len(tables.read("clips", second)) == 0


def test_a_backfill_run_over_one_partition_writes_that_partition_not_all(tmp_path, monkeypatch):
    # The backfill daemon launches a one-shard run as a range whose start is its end (the last run
    # of a 5-shard backfill at 4 per run is one); such a run has no `partition_key`.
    home = tmp_path / "home"
    monkeypatch.setenv("HAIC_HOME", str(home))
    partition = land_sample(home)
    defs = build_definitions()
    with dagster_instance(home) as instance:
        instance.add_dynamic_partitions(source_shards.name, [partition])
        result = defs.resolve_job_def("curate_source").execute_in_process(
            instance=instance, asset_selection=SPINE, tags={
                "dagster/asset_partition_range_start": partition, "dagster/asset_partition_range_end": partition})
        assert result.success
    tables = home / "tables"
    assert sorted(p.name for p in (tables / "clips").iterdir()) == [f"{partition}.parquet"]
    assert not list(tables.rglob("all.parquet"))
    assert set(ledger(home)["partition"]) == {partition}
