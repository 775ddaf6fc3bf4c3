"""Issue 23 item 7: a mistaken partition is removed with its tables and ledger (`haic partitions rm`,
with a dry run), and nothing of another partition is touched, whatever the mistaken key says."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from dagster import AssetKey

from haic_assets.definitions import build_definitions
from haic_assets.platform.partitions import source_shards
from haic_cli.main import main
from tests.helpers import SAMPLE_CSV, dagster_instance, land_sample, ledger, run_partition, without_llm

SPINE = [AssetKey("raw_metadata"), AssetKey("metadata_filtered")]


def hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.relative_to(root).parts[0] != "dagster"}


def test_a_mistaken_partition_is_removed_with_its_tables_ledger_and_history(tmp_path, monkeypatch, capsys):
    home = tmp_path / "home"
    monkeypatch.setenv("HAIC_HOME", str(home))
    without_llm(monkeypatch)
    keep = land_sample(home)
    mistaken_csv = tmp_path / "mistake.csv"
    shutil.copyfile(SAMPLE_CSV, mistaken_csv)
    mistake = land_sample(home, csv=mistaken_csv)
    hostile = f"zz__x/../../raw_metadata/{keep}"  # as the UI's GraphQL API accepts it
    defs = build_definitions()
    with dagster_instance(home) as instance:
        for partition in (keep, mistake):
            assert run_partition(defs, instance, partition, selection=SPINE).success
        instance.add_dynamic_partitions(source_shards.name, [hostile])
    # (the warehouse file is remade from the tables after a removal: its views are what changes)
    kept_files = {k: v for k, v in hashes(home).items() if mistake not in k and k != "warehouse.duckdb"}
    mistaken_files = sorted(k for k in hashes(home) if mistake in k and not k.startswith("landing/"))
    assert mistaken_files == sorted([f"tables/{t}/{mistake}.parquet" for t in (
        "raw_metadata", "metadata_filtered", "ledger/raw_metadata", "ledger/metadata_filtered",
        "ledger_counts/raw_metadata", "ledger_counts/metadata_filtered")] + [
        f"tables/ledger_index/delta/{stage}__{mistake}.parquet" for stage in ("raw_metadata", "metadata_filtered")])

    capsys.readouterr()
    assert main(["partitions", "rm", mistake, "--dry-run"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"{mistake}: would remove its registration (source_shards), 8 files and the history of 2 assets"
    assert sorted(line.strip() for line in out[1:9]) == mistaken_files
    assert out[9:] == ["  history: metadata_filtered", "  history: raw_metadata"]
    assert sorted(k for k in hashes(home) if mistake in k and not k.startswith("landing/")) == mistaken_files

    assert main(["partitions", "rm", mistake]) == 0
    assert main(["partitions", "rm", hostile]) == 0
    after = hashes(home)
    assert not [k for k in after if mistake in k and not k.startswith("landing/")]
    assert {k: after[k] for k in kept_files} == kept_files  # the other shard's files, byte for byte
    with dagster_instance(home) as instance:
        assert instance.get_dynamic_partitions(source_shards.name) == [keep]
    assert set(ledger(home)["partition"]) == {keep}
    assert main(["partitions", "rm", mistake]) == 1
    assert capsys.readouterr().err.strip().endswith(f"no partition {mistake!r} (`haic partitions list` shows them)")
