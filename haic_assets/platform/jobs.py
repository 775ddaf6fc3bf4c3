"""The jobs: the main job per source shard, and HAICBench's per-batch and release jobs.

A job that calls an LLM provider carries the provider's run tag, so the run-queue limits per
provider (deploy/dagster.production.yaml, tag_concurrency_limits) take effect.
"""

from dagster import AssetSelection, define_asset_job

from haic_assets.platform.deployment import llm_run_tags
from haic_resources.llm.resource import NOT_CONFIGURED

CURATION_GROUP = "accumulation"
LLM_GROUP = "haic_train"
MAIN_JOB = "curate_source"
HAICBENCH_BATCH_JOB = "haicbench_batch"
ANNOTATION_TASK_JOB = "annotation_task"
HAICBENCH_RELEASE_JOB = "haicbench_release"
WHATIF_JOB = "whatif"
TRAIN_RELEASE_JOB = "train_release"


def build_jobs(llm_configured: bool, provider: str) -> list:
    provider_tags = llm_run_tags(provider) if llm_configured else {}
    groups = [CURATION_GROUP] + ([LLM_GROUP] if llm_configured else [])
    description = ("Materialize every curation asset for one source shard (launched from the UI, `haic run`, "
                   "`haic demo` or the landing sensor).")
    if not llm_configured:
        description += f" Captions are left out of this job: {NOT_CONFIGURED}"
    # The landing files are observed, never materialized, and the gathered HAICTrain release is not a
    # shard's: a run of one shard makes everything between them.
    main = define_asset_job(name=MAIN_JOB, selection=AssetSelection.groups(*groups)
                            - AssetSelection.assets("landing_file", "haic_train_release"), description=description,
                            tags=provider_tags)
    # HAICBench: per annotation batch (its task first, the returned captions later), then the release
    # over all batches (a job cannot mix the two).
    task = define_asset_job(name=ANNOTATION_TASK_JOB, selection=AssetSelection.assets("annotation_tasks"),
                            description="One annotation batch's task: the kept clips of chosen source partitions, "
                                        "exported for the manual check and the caption writers.")
    batch = define_asset_job(name=HAICBENCH_BATCH_JOB,
                             selection=AssetSelection.assets("bench_captions", "qa_pairs", "qa_verified"),
                             description="One annotation batch: human captions -> QA pairs -> reviewed QA.",
                             tags=provider_tags)
    release = define_asset_job(name=HAICBENCH_RELEASE_JOB,
                               selection=AssetSelection.assets("haicbench_content_leakage", "haicbench_split",
                                                                "dataset_statistics"),
                               description="The HAICBench test split from all batches, less clips whose footage is in "
                                           "HAICTrain under another id (with its checks and exports), and the "
                                           "dataset statistics.")
    whatif = define_asset_job(name=WHATIF_JOB, selection=AssetSelection.assets("threshold_whatif"),
                              description="What new thresholds would keep and drop: every stored item re-decided "
                                          "from the ledger (no decoding). Give the thresholds in the config.")
    train_release = define_asset_job(name=TRAIN_RELEASE_JOB, selection=AssetSelection.assets("haic_train_release"),
                                     description="One HAICTrain release gathered from chosen partitions (config: "
                                                 "name, partitions): one folder LLaVA-NeXT trains on.")
    return [main, task, batch, release, whatif, train_release]
