"""Running HAICBench's jobs in process, and reading what they did: the helpers and fixtures that
tests/test_haicbench_assets.py (the batch) and tests/test_haicbench_release.py (split, statistics)
share."""

from __future__ import annotations

import pytest
from dagster import AssetKey

from haic_assets.definitions import build_definitions
from haic_assets.platform.partitions import annotation_batches
from tests.bench_samples import BATCH, export_sample_task
from tests.helpers import home_without_llm

RAW_FILES = {"ops": {"qa_pairs": {"config": {"source": "raw_files"}}}}


@pytest.fixture
def home(tmp_path, monkeypatch):
    return home_without_llm(tmp_path, monkeypatch)


@pytest.fixture
def sample_task(home, media_dir):
    """The sample batch's annotation task: its three clips exported by `haic annotation-task`."""
    export_sample_task(build_definitions().resources["storage"], media_dir)


def run_batch(defs, instance, batch=BATCH, run_config=None, selection=None):
    if not instance.has_dynamic_partition(annotation_batches.name, batch):
        instance.add_dynamic_partitions(annotation_batches.name, [batch])
    return defs.resolve_job_def("haicbench_batch").execute_in_process(
        partition_key=batch, instance=instance, run_config=run_config or {}, raise_on_error=False,
        asset_selection=selection)


def run_release(defs, instance, run_config=None, selection=None):
    return defs.resolve_job_def("haicbench_release").execute_in_process(
        instance=instance, run_config=run_config or {}, raise_on_error=False, asset_selection=selection)


def annotation_keys(*names):
    return [AssetKey(n) for n in names]


def materialization_metadata(result, asset: str) -> dict:
    (event,) = [e for e in result.get_asset_materialization_events() if e.asset_key.to_user_string() == asset]
    return event.materialization.metadata


def failure_message(result) -> str:
    return "\n".join(str(e.step_failure_data.error.message) + str(e.step_failure_data.user_failure_data)
                     for e in result.all_events if e.is_step_failure)
