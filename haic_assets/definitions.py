"""The code location: every asset, job, sensor and resource of the platform.

Built when the code location loads (the UI's code server, each run's process, a test), not at
import: that is when $HAIC_HOME/settings.yaml and the HAIC_* environment are read.
"""

import logging

from dagster import Definitions, definitions

from haic_assets.evaluation.jobs import build_evaluation_jobs
from haic_assets.evaluation.sensors import eval_batch_sensor
from haic_assets.haicbench.checks import HAICBENCH_CHECKS
from haic_assets.haicbench.sensors import annotation_sensor
from haic_platform.deployment import llm_run_tags
from haic_platform.executors import job_executor
from haic_assets.platform.jobs import build_jobs
from haic_assets.platform.llm_batch_sensor import llm_batch_sensor, qa_batch_sensor
from haic_assets.platform.automation import build_recuration_sensor
from haic_assets.platform.resources import build_resources, llm_version
from haic_assets.accumulation.landing_file import landing_file
from haic_assets.platform.sensors import build_landing_sensor
from haic_platform.settings import load_settings
from haic_assets.stages import STAGE_NAMES, STAGES, settings_fields
from haic_resources.llm.resource import NOT_CONFIGURED

log = logging.getLogger("haic")


def build_definitions() -> Definitions:
    """Definitions bound to the current HAIC_HOME, environment and settings file."""
    settings = load_settings(settings_fields())
    resources = build_resources(stage_order=STAGE_NAMES)
    llm = resources["llm"]
    if not llm.configured:
        log.info("shard runs and re-curation leave the caption stages out: %s", NOT_CONFIGURED)
    provider_tags = llm_run_tags(llm.provider) if llm.configured else {}
    return Definitions(
        assets=[landing_file, *(stage.build(settings, llm.provider, llm_version(llm)) for stage in STAGES)],
        asset_checks=HAICBENCH_CHECKS,
        jobs=build_jobs(provider_tags) + build_evaluation_jobs(provider_tags),
        sensors=[build_landing_sensor(settings.platform), build_recuration_sensor(provider_tags), annotation_sensor,
                 llm_batch_sensor, qa_batch_sensor, eval_batch_sensor],
        resources=resources,
        executor=job_executor(settings.platform),  # multiprocess, dask or k8s (platform/executors.py)
    )


@definitions
def defs() -> Definitions:
    return build_definitions()
