"""What makes a curated partition stale, as AutomationConditions Dagster evaluates and the UI shows.

An asset partition is *stale* when
  - it was never materialized;
  - its latest materialization ran under another code version (each stage's code version carries
    its effective settings, prompt template and model: a changed threshold shows up here);
  - (raw_metadata) its landing file has another version than the one it read: the shard was
    replaced or appended to (the landing sensor observes each complete version of a shard);
  - an upstream asset has newer data than the data this partition was computed from; or
  - an upstream asset partition is itself stale (it will be recomputed first).

Dagster's own conditions are edge-triggered ("the code version changed since the previous tick"),
so a fresh evaluation (`haic recurate`) or a threshold changed while the daemon was down would not
see them; and its data-version staleness does not see partitioned observations of a source asset
(dagster/_core/execution/context/data_version_cache.py, "TODO: this needs to account for
observations also"), which is why raw_metadata records the landing version it read. So these are
level conditions read from the latest materialization of each partition: the same answer
whichever process evaluates them, the daemon's or the CLI's. platform/automation.py combines them
with Dagster's own (cron, in progress, failed or missing dependencies).
"""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import dataclass

from dagster import (AssetKey, AssetRecordsFilter, AutomationCondition, AutomationContext, AutomationResult,
                     MetadataValue)
from dagster._core.definitions.data_version import DATA_VERSION_TAG
from dagster._core.definitions.declarative_automation.serialized_objects import AssetSubsetWithMetadata
from dagster._core.definitions.events import AssetKeyPartitionKey
from dagster._core.events import DagsterEventType

from haic_assets.accumulation.landing_file import LANDING_FILE

CODE_VERSION_TAG = "dagster/code_version"
INPUT_EVENT_TAG = "dagster/input_event_pointer/"  # storage id of the upstream materialization used
REASON = "reason"  # the metadata key of a true partition's reason (the UI shows it per partition)
FETCH_CHUNK = 500


@dataclass(frozen=True)
class Materialized:
    """What staleness needs of one materialization: its code version, the upstream materializations
    it read (parent -> storage id) and the landing version it recorded (raw_metadata)."""

    code_version: str | None
    inputs: dict[str, int]
    landing_version: str | None


# storage id -> Materialized. A stored event never changes, so the automation sensor (evaluated in
# the long-lived code server every 30 s) reads each materialization once, not once per tick.
_SEEN: dict[int, Materialized] = {}
_SEEN_LIMIT = 500_000


def _summary(record) -> Materialized:
    from haic_assets.accumulation.raw_metadata import LANDING_VERSION  # raw_metadata's stage module imports this one

    materialization = record.asset_materialization
    tags = dict(materialization.tags or {})
    landing = (materialization.metadata or {}).get(LANDING_VERSION)
    # An upstream asset never materialized (the observed landing file) is recorded as "NULL".
    inputs = {k[len(INPUT_EVENT_TAG):]: int(v) for k, v in tags.items() if k.startswith(INPUT_EVENT_TAG) and v.isdigit()}
    return Materialized(tags.get(CODE_VERSION_TAG), inputs, landing.value if landing is not None else None)


class Staleness:
    """The staleness facts of one evaluation (one tick's AssetGraphView), computed once per asset
    partition and shared by every condition node and asset that asks."""

    def __init__(self, view):
        self.view = view
        self.graph = view.asset_graph
        self.instance = view.instance
        self._queryer = view.get_inner_queryer_for_back_compat()
        self._reasons: dict[tuple[AssetKey, str], tuple[str, str] | None] = {}
        self._landed: dict[str, str] | None = None
        self._held: dict[AssetKey, bool] = {}

    # -- the event log -----------------------------------------------------------------------

    def _latest_id(self, key: AssetKey, partition: str) -> int | None:
        return self._queryer.get_latest_materialization_or_observation_storage_id(AssetKeyPartitionKey(key, partition))

    def prefetch(self, key: AssetKey, partitions) -> None:
        """Read the latest materializations of `key`'s `partitions` that no earlier tick read (one query a chunk)."""
        wanted = sorted({sid for p in partitions if (sid := self._latest_id(key, p)) is not None} - set(_SEEN))
        if len(_SEEN) + len(wanted) > _SEEN_LIMIT:
            _SEEN.clear()
        for start in range(0, len(wanted), FETCH_CHUNK):
            chunk = wanted[start:start + FETCH_CHUNK]
            records = self.instance.fetch_materializations(AssetRecordsFilter(asset_key=key, storage_ids=chunk),
                                                           limit=len(chunk)).records
            for record in records:
                _SEEN[record.storage_id] = _summary(record)

    def latest(self, key: AssetKey, partition: str) -> tuple[int, Materialized] | None:
        sid = self._latest_id(key, partition)
        if sid is None:
            return None
        if sid not in _SEEN:
            self.prefetch(key, [partition])
        return (sid, _SEEN[sid]) if sid in _SEEN else None

    def landed_version(self, partition: str) -> str | None:
        """The data version of the landing file's latest observation (the landing sensor reports one per version)."""
        if self._landed is None:
            found = self.instance.event_log_storage.get_latest_tags_by_partition(
                LANDING_FILE, DagsterEventType.ASSET_OBSERVATION, [DATA_VERSION_TAG])
            self._landed = {p: tags[DATA_VERSION_TAG] for p, tags in found.items() if DATA_VERSION_TAG in tags}
        return self._landed.get(partition)

    # -- the facts ---------------------------------------------------------------------------

    def automated(self, key: AssetKey) -> bool:
        return self.graph.has(key) and self.graph.get(key).automation_condition is not None

    def held(self, key: AssetKey) -> bool:
        """Whether re-curation cannot request `key` in this deployment (an LLM stage without a backend):
        its staleness then does not carry over, since re-running what is made from it would read the
        same data."""
        if key not in self._held:
            self._held[key] = _needs_llm(self.graph.get(key).automation_condition) and not _llm_configured()
        return self._held[key]

    def parent_stale(self, parent: AssetKey, partition: str) -> bool:
        return not self.held(parent) and self.reason(parent, partition) is not None

    def parents(self, key: AssetKey) -> list[AssetKey]:
        """The upstream assets whose staleness carries over: those re-curation manages, by name."""
        return sorted((p for p in self.graph.get(key).parent_keys if self.automated(p)), key=AssetKey.to_user_string)

    def code_version(self, key: AssetKey, partition: str) -> str | None:
        found = self.latest(key, partition)
        current = self.graph.get(key).code_version
        if found is None or found[1].code_version == current:
            return None
        return f"code version {found[1].code_version} -> {current} (settings, prompt or model changed)"

    def landing(self, key: AssetKey, partition: str) -> str | None:
        if LANDING_FILE not in self.graph.get(key).parent_keys:
            return None
        found = self.latest(key, partition)
        read = found[1].landing_version if found else None
        landed = self.landed_version(partition)
        if read is None or landed is None or landed == read:
            return None  # never read, made before versions were recorded, never observed, or the same
        return f"landing file changed since it was read ({read} -> {landed})"

    def newer_upstream(self, key: AssetKey, partition: str, parent: AssetKey) -> str | None:
        found = self.latest(key, partition)
        used = found[1].inputs.get(parent.to_user_string()) if found else None
        newest = self._latest_id(parent, partition)
        if used is None or newest is None or used == newest:
            return None
        return f"upstream {parent.to_user_string()} has newer data"

    def reason(self, key: AssetKey, partition: str) -> tuple[str, str] | None:
        """(kind, reason) of the first thing that makes the partition stale, as `haic recurate` lists
        it (None: it is not): never materialized, code version, landing file, then per upstream asset
        (by name) its staleness or its newer data."""
        if (key, partition) in self._reasons:
            return self._reasons[(key, partition)]
        found: tuple[str, str] | None = None
        if self.latest(key, partition) is None:
            found = ("missing", "never materialized for this partition")
        elif (text := self.code_version(key, partition)) is not None:
            found = ("code_version", text)
        elif (text := self.landing(key, partition)) is not None:
            found = ("landing", text)
        else:
            for parent in self.parents(key):
                if self.parent_stale(parent, partition):
                    found = ("upstream_stale", f"upstream {parent.to_user_string()} is stale")
                    break
                if (text := self.newer_upstream(key, partition, parent)) is not None:
                    found = ("upstream_newer", text)
                    break
        self._reasons[(key, partition)] = found
        return found


def _needs_llm(condition) -> bool:
    return condition is not None and (isinstance(condition, LLMBackendConfigured)
                                      or any(_needs_llm(child) for child in condition.children))


def _llm_configured() -> bool:
    from haic_assets.platform.resources import llm_resource  # the one reader of the LLM settings

    return llm_resource().configured


_current: list = [None, None]  # (the AssetGraphView of the evaluation in progress, its Staleness)
_lock = threading.Lock()


def staleness_of_view(view) -> Staleness:
    """The Staleness of one evaluation (its AssetGraphView): one per tick, whichever asset and
    condition node asks first."""
    with _lock:
        if _current[0] is not view:
            _current[:] = [view, Staleness(view)]
        return _current[1]


class PartitionFact(AutomationCondition[AssetKey]):
    """A level condition over the candidate partitions: true where `fact` names a reason, which the
    UI shows as the partition's `reason` metadata."""

    label_text = ""
    condition_name = ""  # the name the UI's automation view shows

    @property
    def requires_cursor(self) -> bool:
        return False

    @property
    def description(self) -> str:
        return self.label_text

    @property
    def name(self) -> str:
        return self.condition_name

    def fact(self, staleness: Staleness, key: AssetKey, partition: str) -> str | None:
        raise NotImplementedError

    def evaluate(self, context: AutomationContext) -> AutomationResult:
        if context.candidate_subset.is_empty or context.partitions_def is None:
            return AutomationResult(context=context, true_subset=context.get_empty_subset())
        staleness = staleness_of_view(context.asset_graph_view)
        partitions = context.candidate_subset.expensively_compute_partition_keys()
        for key in [context.key, *staleness.parents(context.key)]:
            staleness.prefetch(key, partitions)
        by_reason: dict[str, set[str]] = defaultdict(set)
        for partition in sorted(partitions):
            if (text := self.fact(staleness, context.key, partition)) is not None:
                by_reason[text].add(partition)
        view, definition = context.asset_graph_view, context.partitions_def
        true = view.get_subset_from_partition_keys(context.key, definition, set().union(*by_reason.values()))
        with_metadata = [AssetSubsetWithMetadata(
            subset=view.get_subset_from_partition_keys(context.key, definition, keys).convert_to_serializable_subset(),
            metadata={REASON: MetadataValue.text(text)}) for text, keys in sorted(by_reason.items())]
        return AutomationResult(context=context, true_subset=true, subsets_with_metadata=with_metadata)


class CodeVersionDiffers(PartitionFact):
    label_text = "its latest materialization ran under another code version (settings, prompt or model changed)"
    condition_name = "code_version_differs"

    def fact(self, staleness, key, partition):
        return staleness.code_version(key, partition)


class LandingFileChanged(PartitionFact):
    label_text = "the landing file has another version than the one raw_metadata read"
    condition_name = "landing_file_changed"

    def fact(self, staleness, key, partition):
        return staleness.landing(key, partition)


class NewerUpstreamData(PartitionFact):
    label_text = "an upstream asset has newer data than the data this partition was made from"
    condition_name = "upstream_has_newer_data"

    def fact(self, staleness, key, partition):
        return next((text for parent in staleness.parents(key)
                     if (text := staleness.newer_upstream(key, partition, parent)) is not None), None)


class UpstreamStale(PartitionFact):
    label_text = "an upstream asset partition is stale (it is re-curated first)"
    condition_name = "upstream_is_stale"

    def fact(self, staleness, key, partition):
        return next((f"upstream {parent.to_user_string()} is stale" for parent in staleness.parents(key)
                     if staleness.parent_stale(parent, partition)), None)


class LandingFileObserved(AutomationCondition[AssetKey]):
    """True where the landing sensor observed a version of the partition's landing file since the
    previous tick. (Dagster's newly_updated() counts only observations of observable source assets;
    landing_file is an external asset the sensor reports observations of.)"""

    @property
    def requires_cursor(self) -> bool:
        return False

    @property
    def name(self) -> str:
        return "landing_file_newly_observed"

    @property
    def description(self) -> str:
        return "the landing sensor observed a version of the landing file since the previous tick"

    def evaluate(self, context: AutomationContext) -> AutomationResult:
        previous = context.previous_max_storage_id
        if previous is None or context.candidate_subset.is_empty:  # a first evaluation: nothing is new to it
            return AutomationResult(context=context, true_subset=context.get_empty_subset())
        observed = context.asset_graph_view.instance.get_latest_storage_id_by_partition(
            LANDING_FILE, DagsterEventType.ASSET_OBSERVATION, after_cursor=previous)
        latest = context.max_storage_id
        new = {p for p, sid in observed.items() if latest is None or sid <= latest}
        true = context.candidate_subset.compute_intersection_with_partition_keys(new)
        return AutomationResult(context=context, true_subset=true)


class LLMBackendConfigured(AutomationCondition[AssetKey]):
    """True where this deployment has an LLM backend: without one, re-curation leaves the LLM stages
    alone (a manual run of them fails at once, saying how to configure one)."""

    @property
    def requires_cursor(self) -> bool:
        return False

    @property
    def name(self) -> str:
        return "llm_backend_configured"

    @property
    def description(self) -> str:
        return "an LLM backend is configured (HAIC_LLM_PROVIDER, GEMINI_API_KEY, OPENAI_API_KEY or OPENAI_BASE_URL)"

    def evaluate(self, context: AutomationContext) -> AutomationResult:
        configured = _llm_configured()
        return AutomationResult(context=context,
                                true_subset=context.candidate_subset if configured else context.get_empty_subset())
