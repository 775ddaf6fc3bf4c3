"""New shard files in the landing zone become partitions, each with a run of the main job."""


import json

from dagster import DefaultSensorStatus, RunRequest, SensorEvaluationContext, SensorResult, SkipReason, sensor

from haic_resources.storage.landing import list_shards
from haic_resources.storage.resource import StorageResource
from haic_assets.platform.jobs import MAIN_JOB
from haic_assets.platform.partitions import source_shards


@sensor(job_name=MAIN_JOB, minimum_interval_seconds=30, default_status=DefaultSensorStatus.RUNNING,
        description="Watches landing/<source>/ (a folder under HAIC_HOME, or HAIC_LANDING_URI in S3): "
                    "each new metadata file becomes a source_shards partition and a curate_source run.")
def landing_sensor(context: SensorEvaluationContext, storage: StorageResource):
    seen = set(json.loads(context.cursor)) if context.cursor else set()
    shards, skipped = list_shards(storage.landing())
    for key, problem in skipped.items():
        if key not in seen:
            context.log.warning(f"landing/{key} ignored: {problem}")
    existing = set(context.instance.get_dynamic_partitions(source_shards.name))
    new_keys = [s.partition_key for s in shards if s.partition_key not in seen and s.partition_key not in existing]
    cursor = json.dumps(sorted(seen | {s.partition_key for s in shards} | set(skipped)))
    if not new_keys:
        return SensorResult(skip_reason=SkipReason("no new shard files"), cursor=cursor)
    context.log.info(f"new shards: {new_keys}")
    return SensorResult(
        run_requests=[RunRequest(partition_key=k, run_key=f"landing:{k}") for k in new_keys],
        dynamic_partitions_requests=[source_shards.build_add_request(new_keys)],
        cursor=cursor,
    )
