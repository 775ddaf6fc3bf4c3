"""The code location: every asset, job, sensor and resource of the platform."""

import logging

from dagster import Definitions, load_assets_from_modules

from haic_assets.accumulation import (action_filtered, clips, human_presence, metadata_filtered, pose_tracks,
                                      raw_metadata, videos)
from haic_assets.haic_train import caption_judgement, captions, haic_train_release as haic_train
from haic_assets.haicbench import bench_captions, dataset_statistics, haicbench_split, qa_pairs, qa_verified
from haic_assets.haicbench.checks import HAICBENCH_CHECKS
from haic_assets.haicbench.sensors import annotation_sensor
from haic_assets.platform.jobs import curate_source_job, haicbench_batch_job, haicbench_release_job
from haic_assets.platform.resources import build_resources
from haic_assets.platform.recuration import recuration_schedule
from haic_assets.platform.sensors import landing_sensor
from haic_resources.llm.resource import NOT_CONFIGURED

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
