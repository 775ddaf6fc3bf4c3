"""llm_batch_sensor, qa_batch_sensor: poll the open LLM batch jobs; when one ends, a run ingests it.

No run waits for a batch job (Gemini and OpenAI answer within 24 hours): the stage submits and
records the job (table `llm_batch_requests`), a sensor asks the provider how each open job
stands, and a finished job becomes one run of the stage (and what follows it) for its partition,
in batch mode, keyed by the job ids so it is requested once. One sensor per job, because a run
belongs to one job: captions (source shards, the main job), qa_pairs (annotation batches).
"""

from dagster import AssetKey, DefaultSensorStatus, RunRequest, SensorEvaluationContext, SensorResult, SkipReason, sensor

from haic_resources.llm.batch import BatchJobs
from haic_resources.llm.resource import LLMResource
from haic_resources.llm.types import LLMError
from haic_resources.storage.resource import StorageResource
from haic_assets.platform.jobs import HAICBENCH_BATCH_JOB, MAIN_JOB
from haic_assets.platform.llm_batches import open_jobs

POLL_INTERVAL_S = 300


def build_llm_batch_sensor(name: str, job_name: str, stages: dict[str, tuple[str, ...]]):
    """A sensor for `stages` (stage -> what a finished job re-materializes for its partition)."""

    @sensor(name=name, job_name=job_name, minimum_interval_seconds=POLL_INTERVAL_S,
            default_status=DefaultSensorStatus.RUNNING,
            description=f"Polls the LLM batch jobs that {', '.join(stages)} submitted in batch mode (llm_mode: batch); "
                        "when a job ends (done, failed in part, expired), requests a run that ingests its results.")
    def poll_batch_jobs(context: SensorEvaluationContext, storage: StorageResource, llm: LLMResource):
        if not llm.configured:
            return SkipReason("no LLM backend configured")
        tables = storage.tables()
        waiting = {stage: open_jobs(tables, stage) for stage in stages}
        if not any(waiting.values()):
            return SkipReason("no open LLM batch jobs")
        jobs = BatchJobs(llm.client())
        requests, running = [], 0
        for stage, by_partition in waiting.items():
            for partition, job_ids in sorted(by_partition.items()):
                finished = []
                for job_id in job_ids:
                    try:
                        status = jobs.status(job_id)
                    except LLMError as exc:
                        context.log.warning(f"batch job {job_id} ({stage}, {partition}): cannot read its state: {exc}")
                        continue
                    if status.done:
                        finished.append(job_id)
                    else:
                        running += 1
                if finished:
                    requests.append(RunRequest(
                        partition_key=partition, run_key=f"llm_batch:{stage}:{partition}:{','.join(finished)}",
                        asset_selection=[AssetKey(asset) for asset in stages[stage]],
                        run_config={"ops": {stage: {"config": {"llm_mode": "batch"}}}},
                        tags={"haic/llm_batch_jobs": ",".join(finished)[:200]}))
        if not requests:
            return SkipReason(f"{running} LLM batch job(s) still running")
        return SensorResult(run_requests=requests)

    return poll_batch_jobs


llm_batch_sensor = build_llm_batch_sensor("llm_batch_sensor", MAIN_JOB,
                                          {"captions": ("captions", "caption_judgement", "haic_train")})
qa_batch_sensor = build_llm_batch_sensor("qa_batch_sensor", HAICBENCH_BATCH_JOB, {"qa_pairs": ("qa_pairs",)})
