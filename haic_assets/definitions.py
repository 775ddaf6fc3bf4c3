"""The code location: every asset, job, sensor and resource of the platform."""

import logging

from dagster import Definitions, load_assets_from_modules

from haic_assets import (action_filtered, caption_judgement, captions, clips, haic_train, human_presence,
                         metadata_filtered, pose_tracks, raw_metadata, videos)
from haic_assets.jobs import curate_source_job
from haic_assets.resources import build_resources
from haic_assets.sensors import landing_sensor
from haic_resources.llm_resource import NOT_CONFIGURED

# One module per stage, in pipeline order.
STAGE_MODULES = [raw_metadata, metadata_filtered, videos, clips, human_presence, pose_tracks, action_filtered,
                 captions, caption_judgement, haic_train]

log = logging.getLogger("haic")


def build_definitions() -> Definitions:
    """Definitions bound to the current HAIC_HOME and settings (tests build one per temporary home)."""
    resources = build_resources()
    llm_configured = resources["llm"].configured
    if not llm_configured:
        log.info("main job without captions: %s", NOT_CONFIGURED)
    return Definitions(
        assets=load_assets_from_modules(STAGE_MODULES),
        jobs=[curate_source_job(llm_configured)],
        sensors=[landing_sensor],
        resources=resources,
    )


defs = build_definitions()
