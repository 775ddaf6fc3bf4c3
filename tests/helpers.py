"""Helpers shared by the pipeline tests: a temporary HAIC_HOME with a real Dagster instance."""

from __future__ import annotations

import shutil
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import duckdb
import pandas as pd
import pytest
from dagster import DagsterInstance
from dagster._core.instance.ref import InstanceRef

from haic_resources.storage.warehouse import in_memory_warehouse
from tests.timing import limit

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLE_CSV = REPO_ROOT / "samples" / "webvid_sample" / "results_sample.csv"
SAMPLE_MEDIA = REPO_ROOT / "samples" / "media"
SAMPLE_PARTITION = "webvid_sample__results_sample.csv"


@contextmanager
def dagster_instance(home: Path) -> Iterator[DagsterInstance]:
    """A real, persistent (SQLite) Dagster instance under HAIC_HOME/dagster, as `haic` uses."""
    (home / "dagster").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(REPO_ROOT / "dagster.yaml", home / "dagster" / "dagster.yaml")
    with DagsterInstance.from_ref(InstanceRef.from_dir(str(home / "dagster"))) as instance:
        yield instance


def land_sample(home: Path, csv: Path = SAMPLE_CSV, source: str = "webvid_sample") -> str:
    """Land `csv` as a producer does who marks a shard complete (the marker, as `haic add-shard` writes it)."""
    landing = home / "landing" / source
    landing.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(csv, landing / csv.name)
    (landing / f"{csv.name}.complete").write_text("")
    (landing / "source.yaml").write_text(f"kind: webvid\nmedia_root: {SAMPLE_MEDIA}\n")
    return f"{source}__{csv.name}"


def run_partition(defs, instance: DagsterInstance, partition: str, selection=None):
    from haic_assets.platform.partitions import source_shards

    if not instance.has_dynamic_partition(source_shards.name, partition):
        instance.add_dynamic_partitions(source_shards.name, [partition])
    if selection is None:  # a whole shard, as `haic run` runs it (without an LLM backend, less the captions)
        from haic_assets.platform.jobs import shard_run_selection

        selection = shard_run_selection(defs.resolve_asset_graph(), defs.resources["llm"].configured)
    job = defs.resolve_job_def("curate_source")
    return job.execute_in_process(partition_key=partition, instance=instance, raise_on_error=False,
                                  asset_selection=selection)


def ledger(home: Path) -> pd.DataFrame:
    conn: duckdb.DuckDBPyConnection = in_memory_warehouse(home / "tables")
    return conn.execute("SELECT * FROM ledger ORDER BY stage, item_id").df()


LLM_SETTINGS = ("GEMINI_API_KEY", "GEMINI_BASE_URL", "OPENAI_API_KEY", "OPENAI_BASE_URL", "HAIC_LLM_PROVIDER")


def without_llm(monkeypatch) -> None:
    """No LLM backend configured, whatever the calling environment has."""
    for name in LLM_SETTINGS:
        monkeypatch.delenv(name, raising=False)


def home_without_llm(tmp_path: Path, monkeypatch) -> Path:
    """A fresh HAIC_HOME under tmp_path, with no LLM backend configured (nor a model named)."""
    without_llm(monkeypatch)
    monkeypatch.delenv("HAIC_LLM_MODEL", raising=False)
    monkeypatch.setenv("HAIC_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def run_sample(home: Path, monkeypatch):
    """The sample partition through the main job with no LLM configured; its definitions."""
    monkeypatch.setenv("HAIC_HOME", str(home))
    without_llm(monkeypatch)
    land_sample(home)
    from haic_assets.definitions import build_definitions

    defs = build_definitions()
    with dagster_instance(home) as instance:
        assert run_partition(defs, instance, SAMPLE_PARTITION).success
    return defs


def wait_until(predicate, timeout_s: float, what: str, log: Path | None = None, interval_s: float = 1.0):
    """Poll `predicate` until it returns something truthy; fail with `what` (and the log's tail) after
    `timeout_s` (scaled by HAIC_TEST_TIME_SCALE, tests/timing.py)."""
    timeout_s = limit(timeout_s)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval_s)
    tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
    pytest.fail(f"timed out after {timeout_s:.0f}s waiting for {what}" + (f"\n--- {log.name} ---\n{tail}" if tail else ""))
