"""The code location: every asset, job, sensor and resource of the platform."""

import logging

from dagster import Definitions, load_assets_from_modules

from haic_assets import (action_filtered, bench_captions, caption_judgement, captions, clips, dataset_statistics,
                         haic_train, haicbench_split, human_presence, metadata_filtered, pose_tracks, qa_pairs,
                         qa_verified, raw_metadata, videos)
from haic_assets.checks import HAICBENCH_CHECKS
from haic_assets.haicbench_sensors import annotation_sensor
from haic_assets.jobs import curate_source_job, haicbench_batch_job, haicbench_release_job
from haic_assets.resources import build_resources
from haic_assets.recuration import recuration_schedule
from haic_assets.sensors import landing_sensor
from haic_resources.llm_resource import NOT_CONFIGURED

# One module per stage, in pipeline order.
STAGE_MODULES = [raw_metadata, metadata_filtered, videos, clips, human_presence, pose_tracks, action_filtered,
                 captions, caption_judgement, haic_train,
                 bench_captions, qa_pairs, qa_verified, haicbench_split, dataset_statistics]

log = logging.getLogger("haic")


def build_definitions() -> Definitions:
    """Definitions bound to the current HAIC_HOME and settings (tests build one per temporary home)."""
    resources = build_resources()
    llm_configured = resources["llm"].configured
    if not llm_configured:
        log.info("main job without captions: %s", NOT_CONFIGURED)
    return Definitions(
        assets=load_assets_from_modules(STAGE_MODULES),
        asset_checks=HAICBENCH_CHECKS,
        jobs=[curate_source_job(llm_configured), haicbench_batch_job, haicbench_release_job],
        sensors=[landing_sensor, annotation_sensor],
        schedules=[recuration_schedule],
        resources=resources,
    )


defs = build_definitions()
