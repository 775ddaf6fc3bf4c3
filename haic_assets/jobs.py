"""The main job: every curation asset for one source partition."""

from dagster import AssetSelection, define_asset_job


CURATION_GROUPS = ("accumulation",)

curate_source_job = define_asset_job(
    name="curate_source",
    selection=AssetSelection.groups(*CURATION_GROUPS),
    description="Materialize every curation asset for one source shard (launched from the UI, "
                "`haic demo`, `dagster job launch` or the landing sensor).",
)
