"""The main job: every curation asset for one source partition (LLM-backed ones when a backend exists)."""

from dagster import AssetSelection, define_asset_job

from haic_resources.llm.resource import NOT_CONFIGURED

CURATION_GROUP = "accumulation"
LLM_GROUP = "haic_train"
MAIN_JOB = "curate_source"


def curate_source_job(llm_configured: bool):
    groups = [CURATION_GROUP] + ([LLM_GROUP] if llm_configured else [])
    description = ("Materialize every curation asset for one source shard (launched from the UI, `haic run`, "
                   "`haic demo` or the landing sensor).")
    if not llm_configured:
        description += f" Captions are left out of this job: {NOT_CONFIGURED}"
    return define_asset_job(name=MAIN_JOB, selection=AssetSelection.groups(*groups), description=description)


# HAICBench: per annotation batch, then the release over all batches (a job cannot mix the two).
haicbench_batch_job = define_asset_job(
    name="haicbench_batch",
    selection=AssetSelection.assets("bench_captions", "qa_pairs", "qa_verified"),
    description="One annotation batch: human captions -> QA pairs -> reviewed QA.")
haicbench_release_job = define_asset_job(
    name="haicbench_release",
    selection=AssetSelection.assets("haicbench_split", "dataset_statistics"),
    description="The HAICBench test split from all batches (with its checks and exports), and the dataset statistics.")
