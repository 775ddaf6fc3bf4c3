"""Re-curation of only what changed.

An asset partition is *stale* when
  - its last materialization ran under another code version (each stage's code version carries
    its effective settings, prompt template and model: a changed threshold shows up here);
  - (raw_metadata) its landing file has another version than the one it read: the shard was
    replaced or appended to (once complete: see haic_resources/storage/landing.py);
  - an upstream asset has newer data than the data this partition was computed from;
  - an upstream asset partition is itself stale (it will be recomputed first); or
  - it was never materialized.
The weekly schedule (cron a setting) runs, per partition, exactly the stale assets; everything
else keeps its materialization, and LLM calls whose inputs did not change come from the cache.
"""

import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Mapping

from dagster import (AssetKey, AssetRecordsFilter, DagsterInstance, DefaultScheduleStatus, RunRequest,
                     ScheduleEvaluationContext, SkipReason, schedule)

from haic_assets.platform.jobs import MAIN_JOB
from haic_assets.platform.partitions import source_shards
from haic_resources.storage.landing import LandingVersions, list_landed, waiting_reason
from haic_resources.storage.resource import StorageResource

RAW_METADATA = AssetKey("raw_metadata")

CODE_VERSION_TAG = "dagster/code_version"
INPUT_EVENT_TAG = "dagster/input_event_pointer/"  # storage id of the upstream materialization used


@dataclass(frozen=True)
class Staleness:
    key: AssetKey
    partition: str
    reason: str


@dataclass(frozen=True)
class LandedVersion:
    """A shard's landing file now: its version, or why it is not read yet (still being written)."""

    version: str | None
    waiting: str | None = None


def landing_state(storage, platform, now_s: float | None = None) -> dict[str, LandedVersion]:
    """partition -> its landing file's version now (one listing of the landing zone)."""
    now_s = time.time() if now_s is None else now_s
    landing = storage.landing()
    versions = LandingVersions(landing, storage.layout.cache / "landing_versions.json")
    state = {}
    for item in list_landed(landing)[0]:
        reason = waiting_reason(item, now_s, platform.landing_complete_after_s, platform.landing_require_marker)
        state[item.shard.partition_key] = LandedVersion(
            None if reason else versions.version(item.shard.key, item.stat), reason)
    versions.save()
    return state


def _latest(instance: DagsterInstance, key: AssetKey, partition: str) -> tuple[int, dict, dict] | None:
    """(storage id, tags, metadata) of the latest materialization of one asset partition."""
    result = instance.fetch_materializations(AssetRecordsFilter(asset_key=key, asset_partitions=[partition]), limit=1)
    if not result.records:
        return None
    record = result.records[0]
    materialization = record.event_log_entry.dagster_event.event_specific_data.materialization
    return record.storage_id, dict(materialization.tags or {}), dict(materialization.metadata or {})


def _landing_reason(found: tuple[int, dict, dict], landed: LandedVersion | None) -> str | None:
    """Why raw_metadata is stale for its landing file (None: it is not, or it cannot be told)."""
    recorded = found[2].get("landing_version")
    read = recorded.value if recorded is not None else None
    if landed is None or read is None or landed.waiting or landed.version == read:
        return None  # gone from the landing zone, made before versions were recorded, being written, or the same
    return f"landing file changed since it was read ({read} -> {landed.version})"


def stale_assets(instance: DagsterInstance, asset_graph, job_keys: set[AssetKey], partition: str,
                 landed: LandedVersion | None = None) -> list[Staleness]:
    """The stale assets of one partition, in topological order, each with its first reason."""
    stale: dict[AssetKey, str] = {}
    latest: dict[AssetKey, tuple[int, dict] | None] = {}
    for level in asset_graph.toposorted_asset_keys_by_level:
        for key in level:
            if key not in job_keys:
                continue
            node = asset_graph.get(key)
            found = latest[key] = _latest(instance, key, partition)
            if found is None:
                stale[key] = "never materialized for this partition"
                continue
            tags = found[1]
            if tags.get(CODE_VERSION_TAG) != node.code_version:
                stale[key] = f"code version {tags.get(CODE_VERSION_TAG)} -> {node.code_version} (settings, prompt or model changed)"
                continue
            if key == RAW_METADATA and (reason := _landing_reason(found, landed)):
                stale[key] = reason
                continue
            for parent in sorted(node.parent_keys, key=lambda k: k.to_user_string()):
                if parent not in job_keys:
                    continue
                if parent in stale:
                    stale[key] = f"upstream {parent.to_user_string()} is stale"
                    break
                used = tags.get(INPUT_EVENT_TAG + parent.to_user_string())
                if latest.get(parent) and used is not None and int(used) != latest[parent][0]:
                    stale[key] = f"upstream {parent.to_user_string()} has newer data"
                    break
    return [Staleness(k, partition, r) for k, r in stale.items()]


def recuration_requests(instance: DagsterInstance, job, graph, tick: str | None = None,
                        landing: Mapping[str, LandedVersion] | None = None) -> tuple[list[RunRequest], list[Staleness]]:
    """One run request per partition with stale assets of `job`, selecting exactly those assets.
    `landing` is `landing_state(...)`: each shard's landing version now (None: not compared).

    With `tick` (a schedule's tick time) each request gets the run key `recurate:<tick>:<partition>`:
    one run per partition per tick, and a run that failed is requested again at the next tick.
    """
    job_keys = set(job.asset_layer.selected_asset_keys)
    everything: list[Staleness] = []
    requests = []
    for partition in instance.get_dynamic_partitions(source_shards.name):
        found = stale_assets(instance, graph, job_keys, partition, (landing or {}).get(partition))
        if not found:
            continue
        everything += found
        requests.append(RunRequest(partition_key=partition, asset_selection=[s.key for s in found],
                                   tags={"haic/recuration": "true"},
                                   run_key=f"recurate:{tick}:{partition}" if tick else None))
    return requests, everything


def summarize(stale: list[Staleness]) -> dict[str, list[str]]:
    out = defaultdict(list)
    for s in stale:
        out[s.partition].append(f"{s.key.to_user_string()}: {s.reason}")
    return dict(out)


def build_recuration_schedule(platform):
    """The re-curation schedule at settings.yaml's platform.recuration_cron."""

    @schedule(name="recuration_schedule", cron_schedule=platform.recuration_cron, job_name=MAIN_JOB,
              default_status=DefaultScheduleStatus.STOPPED,
              description="Weekly re-curation: re-materialize only stale asset partitions (changed settings, prompt, "
                          "model, or new upstream data). Cron: settings.yaml platform.recuration_cron.")
    def recuration_schedule(context: ScheduleEvaluationContext, storage: StorageResource):
        repository = context.repository_def
        tick = context.scheduled_execution_time.isoformat()  # always set on a daemon tick
        requests, stale = recuration_requests(context.instance, repository.get_job(MAIN_JOB),
                                              repository.asset_graph, tick=tick,
                                              landing=landing_state(storage, platform))
        if not requests:
            return SkipReason("nothing is stale")
        context.log.info(f"re-curating: {summarize(stale)}")
        return requests

    return recuration_schedule
