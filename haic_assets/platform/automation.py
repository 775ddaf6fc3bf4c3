"""Re-curation through Dagster's declarative automation: the condition every curated stage carries,
the sensor that evaluates it, and the same conditions as `haic recurate` shows and runs them.

A stage partition is requested when

    [raw_metadata] a new version of its landing file was observed and differs from the one it read
  | it is stale (platform/recuration.py) at the scheduled pass (settings.yaml platform.recuration_cron)
  | an upstream asset partition is requested in this tick (the same run re-curates it afterwards)

and none of these holds: it is in progress; a dependency is in progress, missing or failed (and is
not requested in this tick); it needs an LLM and the deployment has none. The UI's Automation tab of
each asset shows this tree per partition, with the reason of every true staleness fact.

The sensor runs in the code server (`use_user_code_server`: our facts are Python), every 30 s; when
one tick requests several partitions of an asset it launches a backfill, whose runs take at most
`platform.partitions_per_run` shards each (the stages' backfill policy).
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

from dagster import (AssetDep, AssetKey, AssetSelection, AutomationCondition, AutomationConditionSensorDefinition,
                     BetaWarning, DefaultSensorStatus, PreviewWarning)
from dagster._core.definitions.asset_daemon_cursor import AssetDaemonCursor
from dagster._core.definitions.automation_tick_evaluation_context import build_run_requests
from dagster._core.definitions.declarative_automation.automation_condition_evaluator import (
    AutomationConditionEvaluator)
from dagster._core.definitions.partitions.context import partition_loading_context

from haic_assets.accumulation.landing_file import LANDING_FILE
from haic_assets.platform.partitions import source_shards
from haic_platform.recuration import (CodeVersionDiffers, LandingFileChanged, LandingFileObserved,
                                             LLMBackendConfigured, NewerUpstreamData, UpstreamStale, staleness_of_view)

SENSOR = "recuration_sensor"
RECURATION_TAG = "haic/recuration"
SCHEDULED_PASS = "stale, at the scheduled re-curation pass"
STALE = "stale"
# The dependencies whose state guards a run: those the platform materializes (the observed landing
# files are the data providers'; raw_metadata itself says when one is missing).
MATERIALIZED = AssetSelection.all()


def stale_condition(reads_landing_file: bool) -> AutomationCondition:
    facts = [AutomationCondition.missing().with_label("never materialized"), CodeVersionDiffers()]
    if reads_landing_file:
        facts.append(LandingFileChanged())
    facts += [NewerUpstreamData(), UpstreamStale()]
    stale = facts[0]
    for fact in facts[1:]:
        stale = stale | fact
    return stale.with_label(STALE)


def recuration_condition(name: str, kind: str | None, reads_landing_file: bool, cron: str) -> AutomationCondition:
    """The re-curation condition of one curated stage (see the module's docstring)."""
    stale = stale_condition(reads_landing_file)
    triggers = []
    if reads_landing_file:
        # The landing sensor observes each complete new version of a shard once (data version = its
        # version); the fact keeps out the first version of a new shard, whose run the sensor requests,
        # and a version raw_metadata has read already.
        new_version = LandingFileObserved() & LandingFileChanged()
        triggers.append(new_version.since_last_handled().with_label("a new version of its landing file"))
    triggers.append((stale & AutomationCondition.cron_tick_passed(cron)).since_last_handled()
                    .with_label(SCHEDULED_PASS))
    triggers.append(AutomationCondition.any_deps_match(AutomationCondition.will_be_requested())
                    .allow(MATERIALIZED).with_label("an upstream asset is re-curated in this tick"))
    trigger = triggers[0]
    for other in triggers[1:]:
        trigger = trigger | other
    failed = AutomationCondition.any_deps_match(
        AutomationCondition.execution_failed() & ~AutomationCondition.will_be_requested()).allow(MATERIALIZED)
    condition = (trigger.with_label("re-curation is due")
                 & ~AutomationCondition.in_progress()
                 & ~AutomationCondition.any_deps_in_progress()
                 & ~AutomationCondition.any_deps_missing().allow(MATERIALIZED)
                 & ~failed.with_label("any_deps_failed"))
    if kind == "llm":
        condition = condition & LLMBackendConfigured()
    return condition.with_label(f"re-curate {name}")


def stage_automation(spec, platform) -> AutomationCondition | None:
    """The automation condition the stage factory sets on a stage's assets: re-curation for the
    stages of a source shard; None (run by their own jobs and sensors) for the others."""
    if spec.partitions is not source_shards:
        return None
    reads_landing = LANDING_FILE in {d.asset_key if isinstance(d, AssetDep) else AssetKey(d) for d in spec.deps}
    return recuration_condition(spec.name, spec.kind, reads_landing, platform.recuration_cron)


def build_recuration_sensor(run_tags: dict[str, str]) -> AutomationConditionSensorDefinition:
    with warnings.catch_warnings():  # use_user_code_server is beta in 1.13; our facts need it (module docstring)
        warnings.simplefilter("ignore", BetaWarning)
        return _recuration_sensor(run_tags)


def _recuration_sensor(run_tags: dict[str, str]) -> AutomationConditionSensorDefinition:
    return AutomationConditionSensorDefinition(
        SENSOR, target=AssetSelection.all(), use_user_code_server=True, default_status=DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=30, run_tags={RECURATION_TAG: "true", **run_tags},
        description="Re-curation: each tick evaluates every curated stage's automation condition (its Automation tab "
                    "shows why a partition will run or not). A new landing-file version is re-curated at once; "
                    "stale partitions (changed settings, prompt, model, newer upstream data, never materialized) at "
                    "the pass of settings.yaml platform.recuration_cron. Several partitions go as one backfill, at "
                    "most platform.partitions_per_run shards a run.")


# -- the same conditions, as `haic recurate` shows and runs them -------------------------------

@dataclass(frozen=True)
class Planned:
    partition: str
    asset: AssetKey
    reason: str


def with_the_pass_open(defs):
    """`defs` whose scheduled pass is now: the same conditions, with the cron gate of the stale facts open."""
    def open_pass(spec):
        if spec.automation_condition is None:
            return spec
        reads_landing = LANDING_FILE in {dep.asset_key for dep in spec.deps}
        return spec.replace_attributes(
            automation_condition=spec.automation_condition.replace(SCHEDULED_PASS, stale_condition(reads_landing)))

    with warnings.catch_warnings():  # map_asset_specs is a preview in 1.13
        warnings.simplefilter("ignore", PreviewWarning)
        return defs.map_asset_specs(func=open_pass)


def recuration_plan(defs, instance, run_tags: dict[str, str] | None = None) -> tuple[list, list[Planned]]:
    """Evaluate the re-curation conditions as a tick of the daemon does at its scheduled pass, now
    and from no earlier tick: (one run request per partition, selecting exactly its assets; the
    assets of each partition in pipeline order, with the first reason each is stale)."""
    opened = with_the_pass_open(defs)
    graph = opened.resolve_asset_graph()
    evaluator = AutomationConditionEvaluator(
        entity_keys={k for k in graph.get_all_asset_keys() if graph.get(k).automation_condition is not None},
        instance=instance, asset_graph=graph, cursor=AssetDaemonCursor.empty(), emit_backfills=False,
        evaluation_id=0, logger=logging.getLogger("haic.recurate"))
    _, subsets = evaluator.evaluate()
    view = evaluator.asset_graph_view
    with partition_loading_context(new_ctx=view.partition_loading_context):
        requests = build_run_requests(subsets, graph, {RECURATION_TAG: "true", **(run_tags or {})}, emit_backfills=False)
        requested = {(k, p) for r in requests for k in r.asset_selection for p in [r.partition_key]}
    staleness = staleness_of_view(view)
    order = {key: i for i, key in enumerate(graph.toposorted_asset_keys)}
    planned = []
    for key, partition in sorted(requested, key=lambda kp: (kp[1], order[kp[0]])):
        found = staleness.reason(key, partition)
        upstream = next((p.to_user_string() for p in staleness.parents(key) if (p, partition) in requested), None)
        planned.append(Planned(partition, key, found[1] if found else f"upstream {upstream} is re-curated first"))
    return sorted(requests, key=lambda r: r.partition_key), planned
