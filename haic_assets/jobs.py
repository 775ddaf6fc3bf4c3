"""The main job: every curation asset for one source partition (LLM-backed ones when a backend exists)."""

from dagster import AssetSelection, define_asset_job

from haic_resources.llm_resource import NOT_CONFIGURED

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
