"""The code location: every asset, job, sensor and resource of the platform."""

from dagster import Definitions, load_assets_from_modules

from haic_assets import clips, metadata_filtered, raw_metadata, videos
from haic_assets.jobs import curate_source_job
from haic_assets.resources import build_resources
from haic_assets.sensors import landing_sensor

# One module per stage, in pipeline order.
STAGE_MODULES = [raw_metadata, metadata_filtered, videos, clips]


def build_definitions() -> Definitions:
    """Definitions bound to the current HAIC_HOME (tests build one per temporary home)."""
    return Definitions(
        assets=load_assets_from_modules(STAGE_MODULES),
        jobs=[curate_source_job],
        sensors=[landing_sensor],
        resources=build_resources(),
    )


defs = build_definitions()
