"""Shard files in the landing zone become partitions and runs: new ones, and new versions of old ones.

Each tick lists the landing zone once. A shard is taken only when it is complete (its marker, or
quiet for `platform.landing_complete_after_s`; haic_resources/storage/landing.py). A complete
shard whose version the sensor has not seen is reported as an observation of `landing_file`
(data version = its version); then
- a new shard becomes a source_shards partition with a run of the main job (without an LLM
  backend, less the caption stages);
- a partition whose raw_metadata was made from another version of its file is re-curated by the
  recuration_sensor, whose raw_metadata condition sees the new observation
  (platform/automation.py): it requests raw_metadata and every stage after it in one run, once per
  version. Unchanged LLM calls come from the cache, so re-curating a changed shard pays only for its
  new rows.
"""

from __future__ import annotations

import json
import time

from dagster import (AssetKey, AssetObservation, AssetRecordsFilter, DefaultSensorStatus, RunRequest,
                     SensorEvaluationContext, SensorResult, SkipReason, sensor)
from dagster._core.definitions.data_version import DATA_VERSION_TAG

from haic_assets.accumulation.landing_file import LANDING_FILE
from haic_assets.accumulation.raw_metadata import LANDING_VERSION
from haic_assets.platform.jobs import MAIN_JOB, shard_run_selection
from haic_assets.platform.partitions import source_shards
from haic_resources.llm.resource import LLMResource
from haic_resources.storage.landing import LandingVersions, list_landed, waiting_reason
from haic_resources.storage.resource import StorageResource


def build_landing_sensor(platform):
    """The landing sensor, with the platform's completeness settings."""

    @sensor(name="landing_sensor", job_name=MAIN_JOB, minimum_interval_seconds=30,
            default_status=DefaultSensorStatus.RUNNING,
            description="Watches landing/<source>/ (a folder under HAIC_HOME, or HAIC_LANDING_URI in S3): each new "
                        "complete metadata file becomes a source_shards partition and a curate_source run; each "
                        "complete version of a shard is observed as landing_file, so a shard replaced or appended "
                        "after it was curated is re-curated (recuration_sensor).")
    def landing_sensor(context: SensorEvaluationContext, storage: StorageResource, llm: LLMResource):
        return landing_tick(context, storage, platform, time.time(), llm.configured)

    return landing_sensor


def landing_tick(context: SensorEvaluationContext, storage: StorageResource, platform, now_s: float,
                 llm_configured: bool = False):
    """One evaluation of the landing sensor at `now_s` (seconds since the epoch)."""
    cursor = _read_cursor(context.cursor)
    seen: dict[str, str] = cursor["versions"]
    landed, skipped = list_landed(storage.landing())
    for key, problem in skipped.items():
        if key not in cursor["skipped"]:
            context.log.warning(f"landing/{key} ignored: {problem}")
    versions = LandingVersions(storage.landing(), storage.layout.cache / "landing_versions.json")
    existing = set(context.instance.get_dynamic_partitions(source_shards.name))
    # (A context built without its repository, as a test may build one, asks for the whole job.)
    repository = context.repository_def
    selection = shard_run_selection(repository.asset_graph, llm_configured) if repository is not None else None
    new_keys, requests, observations, waiting = [], [], [], []
    for item in landed:
        key = item.shard.partition_key
        reason = waiting_reason(item, now_s, platform.landing_complete_after_s, platform.landing_require_marker)
        if reason is not None:
            waiting.append(key)
            if key not in cursor["waiting"]:
                context.log.info(f"landing/{item.shard.key}: {reason}")
            continue
        version = versions.version(item.shard.key, item.stat)
        if seen.get(key) == version:
            continue
        seen[key] = version
        observations.append(AssetObservation(asset_key=LANDING_FILE, partition=key, tags={DATA_VERSION_TAG: version},
                                             metadata={"size_bytes": item.stat.size, "version": version}))
        if key not in existing:
            new_keys.append(key)
            requests.append(RunRequest(partition_key=key, run_key=f"landing:{key}:{version}", asset_selection=selection))
        elif _read_version(context.instance, key) not in (None, version):
            context.log.info(f"landing/{item.shard.key} changed since raw_metadata read it: recuration_sensor "
                             "re-curates it")
    versions.save()
    new_cursor = json.dumps({"versions": seen, "skipped": sorted(skipped), "waiting": sorted(waiting)}, sort_keys=True)
    if not observations:
        what = f"{len(waiting)} shard(s) still being written" if waiting else "no new or changed shard files"
        return SensorResult(skip_reason=SkipReason(what), cursor=new_cursor)
    if new_keys:
        context.log.info(f"new shards: {new_keys}")
    return SensorResult(run_requests=requests, asset_events=observations,
                        dynamic_partitions_requests=[source_shards.build_add_request(new_keys)] if new_keys else [],
                        cursor=new_cursor)


def _read_cursor(text: str | None) -> dict:
    cursor = json.loads(text) if text else {}
    if isinstance(cursor, list):  # a cursor from before versions: the keys it had seen, versions unknown
        cursor = {"versions": {key: "" for key in cursor}}
    return {"versions": dict(cursor.get("versions", {})), "skipped": set(cursor.get("skipped", ())),
            "waiting": set(cursor.get("waiting", ()))}


def _read_version(instance, partition: str) -> str | None:
    """The landing version the partition's latest raw_metadata was made from (None: never made, or
    made before versions were recorded)."""
    return recorded_landing_versions(instance, [partition]).get(partition)


def recorded_landing_versions(instance, partitions: list[str]) -> dict[str, str]:
    """partition -> the landing version its latest raw_metadata materialization recorded."""
    found = {}
    for partition in partitions:
        records = instance.fetch_materializations(
            AssetRecordsFilter(asset_key=AssetKey("raw_metadata"), asset_partitions=[partition]), limit=1).records
        if records:
            metadata = records[0].asset_materialization.metadata
            if LANDING_VERSION in metadata:
                found[partition] = metadata[LANDING_VERSION].value
    return found
