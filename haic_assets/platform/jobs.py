"""The jobs: the main job per source shard, and HAICBench's per-batch and release jobs.

The jobs are the same in every environment: the main job holds the caption stages whether or not
an LLM backend is configured, so the UI can launch them anywhere (without a backend their steps
fail at once, saying how to configure one). What a whole-shard run selects is the deployment's
choice (`shard_run_selection`). A job that calls an LLM provider carries the configured provider's
run tag, so the run-queue limits per provider (deploy/dagster.production.yaml,
tag_concurrency_limits) take effect.
"""

from dagster import AssetKey, AssetSelection, define_asset_job

CURATION_GROUP = "accumulation"
LLM_GROUP = "haic_train"
MAIN_JOB = "curate_source"
HAICBENCH_BATCH_JOB = "haicbench_batch"
ANNOTATION_TASK_JOB = "annotation_task"
HAICBENCH_RELEASE_JOB = "haicbench_release"
WHATIF_JOB = "whatif"
TRAIN_RELEASE_JOB = "train_release"


# The landing files are observed, never materialized, and the gathered HAICTrain release is not a
# shard's: a run of one shard makes everything between them.
MAIN_SELECTION = (AssetSelection.groups(CURATION_GROUP, LLM_GROUP)
                  - AssetSelection.assets("landing_file", "haic_train_release"))
WITHOUT_LLM_SELECTION = AssetSelection.groups(CURATION_GROUP) - AssetSelection.assets("landing_file")


def shard_run_selection(asset_graph, llm_configured: bool) -> list[AssetKey] | None:
    """What a run of a whole shard (`haic run`, `haic demo`, the landing sensor) materializes: the
    main job (None), or without an LLM backend the main job less the caption stages, which would
    fail for want of one."""
    if llm_configured:
        return None
    return sorted(WITHOUT_LLM_SELECTION.resolve(asset_graph), key=AssetKey.to_user_string)


def build_jobs(provider_tags: dict[str, str]) -> list:
    """The jobs; `provider_tags` are the configured LLM provider's run tags ({} without one)."""
    description = ("Materialize every curation asset for one source shard (launched from the UI, `haic run`, "
                   "`haic demo`, the landing sensor or re-curation). The caption stages need an LLM backend: "
                   "without one, `haic run`, `haic demo`, the landing sensor and re-curation leave them out, and a "
                   "run that selects them fails at once saying how to configure one (HAIC_LLM_PROVIDER, "
                   "GEMINI_API_KEY, OPENAI_API_KEY / OPENAI_BASE_URL).")
    main = define_asset_job(name=MAIN_JOB, selection=MAIN_SELECTION, description=description, tags=provider_tags)
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
