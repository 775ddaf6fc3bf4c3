"""llm_batch_sensor, qa_batch_sensor: poll the open LLM batch jobs; when one ends, a run ingests it.

No run waits for a batch job (Gemini and OpenAI answer within 24 hours): the stage submits and
records the job (table `llm_batch_requests`), a sensor asks the provider how each open job
stands, and a finished job becomes one run of the stage (and what follows it) for its partition,
in batch mode, keyed by the job ids and the number of ingest runs of them that have ended, so it
is requested once while it is queued or running, and again when it ended without collecting them
(a failed run, or one that could not read the provider), up to `MAX_INGEST_RUNS` times. An intent
whose job was never written down (the submitting run died) is a reason for a run of its
partition too, which finds the job by its intent, once the intent may be sent again (its
`batch_list_grace_s` has passed: the provider's list may lag a create). One sensor per job, because a run belongs to one job: captions (source shards, the main job), qa_pairs (annotation batches); the
evaluation's sensor (haic_assets/evaluation/sensors.py) is built here too, polling with each
evaluated model's own client. The ingest run repeats the config of the run that submitted.
"""

import hashlib
from datetime import timedelta

from dagster import (AssetKey, AssetRecordsFilter, DagsterRunStatus, DefaultSensorStatus, RunRequest, RunsFilter,
                     SensorEvaluationContext, SensorResult, SkipReason, sensor)

from haic_resources.llm.batch import BatchJobs
from haic_resources.llm.resource import LLMResource
from haic_resources.llm.types import LLMError
from haic_resources.storage.resource import StorageResource
from haic_assets.platform.jobs import HAICBENCH_BATCH_JOB, MAIN_JOB
from haic_platform import llm_batches
from haic_platform.llm_batches import open_jobs, unresolved_intents

POLL_INTERVAL_S = 300
# An intent younger than this may belong to a run that is sending it now.
INTENT_GRACE = timedelta(minutes=15)
MAX_INGEST_RUNS = 5
INGEST_TAG = "haic/llm_batch_ingest"
ENDED = (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED)


def ingest_runs_ended(instance, ingest: str) -> int:
    """How many runs requested for this ingest (its jobs or intents) have ended."""
    return len(instance.get_run_records(RunsFilter(tags={INGEST_TAG: ingest}, statuses=list(ENDED))))


def platform_client(storage: StorageResource, llm: LLMResource, step: str, partition: str):
    """The client whose jobs a step submitted: the platform's LLM backend (None when unconfigured)."""
    return llm.client() if llm.configured else None


def submitting_config(instance, op: str, partition: str) -> dict:
    """The config of the run that last materialized `op` for `partition` (it submitted the jobs), so
    the ingest run asks for the same items with the same settings (a video folder, a prompt)."""
    records = instance.fetch_materializations(AssetRecordsFilter(asset_key=AssetKey(op), asset_partitions=[partition]),
                                              limit=1).records
    run = instance.get_run_by_id(records[0].run_id) if records else None
    config = ((run.run_config if run else {}).get("ops", {}).get(op, {}) or {}).get("config", {})
    return dict(config)


def build_llm_batch_sensor(name: str, job_name: str, stages: dict[str, tuple[str, ...]], client_for=platform_client):
    """A sensor for `stages` (the step its requests are recorded under -> what a finished job
    re-materializes for its partition, the stage's own asset first). `client_for(storage, llm,
    step, partition)`: the client that polls the step's jobs."""

    @sensor(name=name, job_name=job_name, minimum_interval_seconds=POLL_INTERVAL_S,
            default_status=DefaultSensorStatus.RUNNING,
            description=f"Polls the LLM batch jobs that {', '.join(stages)} submitted in batch mode (llm_mode: batch); "
                        "when a job ends (done, failed in part, expired), requests a run that ingests its results.")
    def poll_batch_jobs(context: SensorEvaluationContext, storage: StorageResource, llm: LLMResource):
        tables = storage.tables()
        waiting = {stage: open_jobs(tables, stage) for stage in stages}
        now = llm_batches.utc_now()
        intents = {stage: unresolved_intents(tables, stage, now, INTENT_GRACE) for stage in stages}
        if not any(waiting.values()) and not any(intents.values()):
            return SkipReason("no open LLM batch jobs")
        # (partition, step) -> its ended jobs, and the intents whose jobs a run must look for
        finished: dict[tuple[str, str], list[str]] = {(p, stage): list(ids) for stage in stages
                                                       for p, ids in intents[stage].items()}
        running = 0
        for stage, by_partition in waiting.items():
            for partition, job_ids in sorted(by_partition.items()):
                try:
                    client = client_for(storage, llm, stage, partition)
                except Exception as exc:  # noqa: BLE001 - a partition that cannot be polled must not stop the others
                    context.log.warning(f"{stage} {partition}: no client to poll its batch jobs: {exc}")
                    continue
                if client is None:
                    continue
                jobs = BatchJobs(client)
                for job_id in job_ids:
                    try:
                        status = jobs.status(job_id)
                    except LLMError as exc:
                        context.log.warning(f"batch job {job_id} ({stage}, {partition}): cannot read its state: {exc}")
                        continue
                    if status.done:
                        finished.setdefault((partition, stage), []).append(job_id)
                    else:
                        running += 1
        requests = []
        for (partition, stage), job_ids in sorted(finished.items()):
            op = stages[stage][0]
            key = f"llm_batch:{stage}:{partition}:{','.join(sorted(job_ids))}"
            ingest = hashlib.sha256(key.encode()).hexdigest()[:16]
            ended = ingest_runs_ended(context.instance, ingest)
            if ended >= MAX_INGEST_RUNS:
                context.log.warning(f"{stage} {partition}: {ended} ingest runs of batch jobs {', '.join(job_ids)} "
                                    "ended without collecting them; no more are requested (see their logs, then "
                                    "`haic retry` the partition)")
                continue
            config = {**submitting_config(context.instance, op, partition), "llm_mode": "batch"}
            requests.append(RunRequest(
                partition_key=partition, run_key=key if not ended else f"{key}:attempt{ended + 1}",
                asset_selection=[AssetKey(asset) for asset in stages[stage]],
                run_config={"ops": {op: {"config": config}}},
                tags={"haic/llm_batch_jobs": ",".join(job_ids)[:200], INGEST_TAG: ingest}))
        if not requests:
            return SkipReason(f"{running} LLM batch job(s) still running")
        return SensorResult(run_requests=requests)

    return poll_batch_jobs


llm_batch_sensor = build_llm_batch_sensor("llm_batch_sensor", MAIN_JOB,
                                          {"captions": ("captions", "caption_judgement", "haic_train")})
qa_batch_sensor = build_llm_batch_sensor("qa_batch_sensor", HAICBENCH_BATCH_JOB, {"qa_pairs": ("qa_pairs",)})
