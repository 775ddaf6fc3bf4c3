"""One shape for every stage: a config class and a body become a partitioned Dagster asset.

A stage module holds its `Config` (the paper's values as defaults) and its body:

    @partitioned_stage("pose_tracks", PoseTracksConfig, ins=("human_presence", "person_detections"))
    def pose_tracks(stage: StageContext, config: PoseTracksConfig, human_presence, person_detections):
        ...
        return StageResult(table, decisions, preview=["clip_id", "track_id", "t"])

The factory does the rest, the same way for every stage: partitions, IO manager, group (the
stage's domain folder), code version (code, effective settings, prompt and model), backfill
policy, automation condition (re-curation: platform/automation.py), op tags and pools (by
`kind`), the loop over the partitions of a multi-partition run, and turning the body's result
into ledger rows, a preview, pictures and the `Output`s.

Nothing here runs at import: `StageSpec.build(settings, llm)` makes the asset when the
definitions are built, with the deployment's settings as the config defaults.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass, field
from typing import Annotated, Any, Callable, Mapping, Sequence

import pandas as pd
from dagster import (AssetDep, AssetIn, AssetKey, AssetOut, BackfillPolicy, Config, Failure, Output,
                     PartitionsDefinition, multi_asset)
from pydantic import Field, ValidationError, create_model

from haic_core.decisions import Decision
from haic_core.ledger import config_hash
from haic_core.ledger_history import DEFAULT_KEEP
from haic_assets.platform.automation import stage_automation
from haic_platform.deployment import k8s_op_tags
from haic_resources.storage.ledger_index import MERGE_AFTER_DELTAS, delta_count
from haic_resources.storage.ledger_index import merge as merge_ledger_index
from haic_assets.platform.io_manager import mark_stored
from haic_platform.ledger import (decision_metadata, ledger_files, ledger_table, preview_table, table_metadata,
                                         write_ledger)
from haic_platform.partition_lock import partition_locks, postgres_url_of
from haic_assets.platform.partitions import UNPARTITIONED, PartitionTables, checked_partition_key, source_shards
from haic_platform.previews import png_metadata, sheet_metadata
from haic_platform.progress import ProgressLog, engine_event_reporter
from haic_platform.retry import RetryScope
from haic_platform.stage_checks import YIELD_BAND, check_results, decision_facts, stage_check_specs

# What each kind of step asks of a cluster (op tags) and of the instance (pools).
STEP_KINDS = ("decode", "gpu", "llm")
OWNER = "team:haic-curation"


class StageFailure(Exception):
    """The partition itself cannot be processed (an unreadable shard, a missing file): its
    decisions are still recorded, then the step fails with `message`."""

    def __init__(self, message: str, decisions: Sequence[Decision] = ()):
        super().__init__(message)
        self.message = message
        self.decisions = list(decisions)


@dataclass(frozen=True)
class StageResult:
    """What a stage body returns for one partition.

    `table` is the asset's table; a stage with several outputs gives `tables` (output name ->
    table, the first one being the stage's own). `decisions` become ledger rows (None: the
    stage records none). `metadata` is added to the first output's; `preview` names the
    columns shown in the UI; `pictures` are PNGs shown inline and saved under previews/; `sheets`
    are contact sheets of decided items (see `teaching_examples`), listed in `contact_sheets`.
    """

    table: pd.DataFrame | None = None
    decisions: Sequence[Decision] | None = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)
    preview: Sequence[str] | None = None
    pictures: Mapping[str, bytes] = field(default_factory=dict)
    tables: Mapping[str, pd.DataFrame] = field(default_factory=dict)
    sheets: Mapping[str, bytes] = field(default_factory=dict)  # item id -> its contact sheet (PNG)
    output_metadata: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


class StageContext:
    """What a body sees: its partition, the log, the run, and the resources it asked for."""

    def __init__(self, context, partition_key: str, stage: str):
        self._context = context
        self.partition_key = partition_key
        self.stage = stage
        self.log = context.log
        self.run_id = context.run.run_id
        self.instance = context.instance
        self.resources = context.resources
        self._report = engine_event_reporter(context)

    def __getattr__(self, name: str) -> Any:  # stage.storage, stage.pose, stage.llm, ...
        return getattr(self.resources, name)

    def progress(self, what: str) -> ProgressLog:
        """A `progress(done, total)` callback that reports how far `what` is (e.g. "scene detection")
        as a structured event of the run (haic_platform/progress.py)."""
        return ProgressLog(self._report, self.stage, self.partition_key, what)


@dataclass(frozen=True)
class StageSpec:
    """A stage as declared in its module; `build` turns it into an asset."""

    name: str
    config_class: type[Config]
    body: Callable[..., StageResult]
    group: str
    version: str = "1"
    ins: Mapping[str, AssetIn] = field(default_factory=dict)
    outs: Mapping[str, str] = field(default_factory=dict)  # output name -> description
    partitions: PartitionsDefinition | None = source_shards
    kind: str | None = None
    resources: tuple[str, ...] = ()
    deps: tuple[str | AssetDep, ...] = ()  # upstream assets read from storage, not loaded as inputs
    settings_from: Mapping[str, str] = field(default_factory=dict)  # field -> stage whose setting it shares
    fingerprint: Callable[[Config], str] | None = None  # more code-version parts (e.g. prompt versions)
    records_decisions: bool = True
    columns: tuple[str, ...] = ()  # the table's required columns (checked by required_columns_present)
    column_docs: Mapping[str, str] = field(default_factory=dict)  # column -> what it holds (the column schema)
    checks: tuple[str, ...] = ()  # optional checks of stage_checks (yield_within_band, caption_format_pass_rate)

    def config_with_settings(self, settings) -> type[Config]:
        """The config class whose defaults are this deployment's settings (the launchpad shows them)."""
        values = {}
        for name in self.config_class.model_fields:
            section = settings.stage(self.settings_from.get(name, self.name))
            if name in section:
                values[name] = section[name]
        if not values:
            return self.config_class
        try:
            self.config_class(**values)  # a wrong type is the settings file's error, named as such
        except ValidationError as exc:
            problems = "; ".join(f"{self.name}.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise ValueError(f"{settings.path}: {problems}") from None
        # The deployment's value becomes the default; the field keeps its bounds (ge, le, validators),
        # so a launchpad value outside them is refused as the settings file's would be.
        fields = {name: (Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation,
                         Field(default=values[name], description=info.description,
                               validate_default=info.validate_default))
                  for name, info in self.config_class.model_fields.items() if name in values}
        return create_model(self.config_class.__name__, __base__=self.config_class,
                            __module__=self.config_class.__module__, **fields)

    def code_version(self, config_class: type[Config], llm_version: str = "") -> str:
        defaults = config_class()
        parts = [self.version, config_hash(defaults.model_dump())]
        if self.fingerprint is not None:
            parts.append(self.fingerprint(defaults))
        if self.kind == "llm":
            parts.append(llm_version)
        return "-".join(p for p in parts if p)

    def build(self, settings, llm_provider: str = "", llm_version: str = ""):
        config_class = self.config_with_settings(settings)
        outs = self.outs or {self.name: self.body.__doc__ or ""}
        version = self.code_version(config_class, llm_version)
        op_tags = (k8s_op_tags({"decode": "decode", "gpu": "pose"}[self.kind], settings.platform.k8s)
                   if self.kind in ("decode", "gpu") else None)
        pool = f"llm_{llm_provider or 'unconfigured'}" if self.kind == "llm" else None
        policy = (BackfillPolicy.multi_run(max_partitions_per_run=settings.platform.partitions_per_run)
                  if self.partitions is not None else None)
        spec = self
        automation = stage_automation(self, settings.platform)  # re-curation (platform/automation.py)
        checks = stage_check_specs(next(iter(outs)), self.columns, self.checks) if self.records_decisions else []
        platform = settings.platform

        def compute(context, config, **inputs):
            yield from spec._run(context, config, inputs, list(outs), platform)

        compute.__name__ = self.name
        compute.__doc__ = self.body.__doc__
        compute.__annotations__ = {"config": config_class}
        return multi_asset(
            name=self.name,
            outs={name: AssetOut(io_manager_key="tables", description=" ".join(description.split()),
                                 code_version=version, kinds=self._kinds(llm_provider), owners=[OWNER],
                                 automation_condition=automation)
                  for name, description in outs.items()},
            check_specs=checks,
            ins=dict(self.ins),
            deps=list(self.deps),
            partitions_def=self.partitions,
            group_name=self.group,
            required_resource_keys={"storage", "warehouse", *self.resources},
            backfill_policy=policy,
            op_tags=op_tags,
            pool=pool,
        )(compute)

    def _kinds(self, llm_provider: str) -> set[str]:
        """The catalog's kind tags: where the tables live, and the model provider an LLM stage calls."""
        return {"parquet", "duckdb"} | ({llm_provider} if self.kind == "llm" and llm_provider else set())

    # -- running ---------------------------------------------------------------------------

    def _run(self, context, config: Config, inputs: dict[str, Any], out_names: list[str], platform):
        keys = list(context.partition_keys) if self.partitions is not None else [UNPARTITIONED]
        # Keys come in by every door (CLI, sensors, the UI, GraphQL): one that cannot name a
        # partition's files fails the step here, before a lock, a table or a ledger row is written.
        for key in keys:
            try:
                checked_partition_key(getattr(self.partitions, "name", None), key)
            except ValueError as exc:
                raise Failure(description=f"{self.name}: {exc}; nothing was written") from None
        # Held until the outputs are stored: no other step of this stage writes these partitions meanwhile.
        with partition_locks(context.resources.storage.layout.root, [f"{self.name}/{k}" for k in keys],
                             f"run {context.run.run_id} step {self.name}", context.log,
                             postgres_url_of(context.instance)):
            yield from self._run_locked(context, config, inputs, out_names, platform, keys)

    def _run_locked(self, context, config, inputs, out_names, platform, keys):
        tables = context.resources.storage.tables()
        for key in keys:  # a step of this stage and partition that died mid-commit: finish its renames
            if tables.recover(self._writer(key)):
                context.log.warning(f"{self.name} [{key}]: finished the table and ledger writes of an interrupted step")
        produced, facts, ledgers = {}, {}, {}
        for key in keys:
            own = {name: (value[key] if isinstance(value, PartitionTables) else value) for name, value in inputs.items()}
            produced[key], facts[key], ledgers[key] = self._one_partition(context, key, config, own, out_names,
                                                                          platform.ledger_history_runs)
        for key in keys:
            self._commit(context, key, {name: produced[key][name][0] for name in out_names}, ledgers[key],
                         platform.ledger_history_runs)
        if any(ledger is not None for ledger in ledgers.values()):
            self._merge_ledger_index_if_due(context)
        for name in out_names:
            # Metadata goes on each partition's materialization only: given to the Output, Dagster
            # would store it twice (in STEP_OUTPUT and in ASSET_MATERIALIZATION).
            for key in keys:
                context.add_asset_metadata(produced[key][name][1], asset_key=AssetKey(name),
                                           partition_key=key if self.partitions is not None else None)
            if len(keys) == 1:
                yield Output(produced[keys[0]][name][0], output_name=name)
            else:
                yield Output(PartitionTables({k: produced[k][name][0] for k in keys}), output_name=name)
        if self.records_decisions:
            selected = {key.name for key in context.selected_asset_check_keys}
            yield from check_results(out_names[0], facts, platform, selected, self.columns)

    def _merge_ledger_index_if_due(self, context) -> None:
        """Once many partitions have written ledger rows since the last merge, one step merges their
        index deltas (haic_resources/storage/ledger_index.py); the others go on."""
        tables = context.resources.storage.tables()
        if delta_count(tables) <= MERGE_AFTER_DELTAS:
            return
        with partition_locks(context.resources.storage.layout.root, ["ledger_index/merge"],
                             f"run {context.run.run_id} step {self.name}", context.log, postgres_url_of(context.instance)):
            if delta_count(tables) > MERGE_AFTER_DELTAS:  # nobody merged them while this step waited
                merged = merge_ledger_index(tables, tables.local_root())
                context.log.info(f"merged {merged} ledger index deltas into the main index")

    def _writer(self, key: str) -> str:
        """The name of this stage's commits of one partition (its partition lock guards it)."""
        return f"{self.name}__{key}"

    def _commit(self, context, key: str, frames: Mapping[str, pd.DataFrame | None], ledger: pd.DataFrame | None,
                keep_history: int = DEFAULT_KEEP):
        """A partition's tables and ledger rows, written together: a reader (`haic why`, the warehouse,
        the next stage) sees all of them new or all of them old, never a ledger that disagrees with
        its table (tables/<stage>/…, ledger/<stage>/…, ledger_counts/<stage>/…)."""
        tables = context.resources.storage.tables()
        files = {(name, key): frame for name, frame in frames.items() if frame is not None}
        if ledger is not None:
            files.update(ledger_files(tables, self.name, key, ledger, keep_history))
        try:
            uris = tables.write_together(self._writer(key), files)
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
            raise Failure(description=f"{self.name} [{key}]: the disk is full where the tables are stored "
                                      f"({tables.store.uri}); nothing of this step was written: free some space "
                                      "and run it again") from None
        for name, frame in frames.items():
            if frame is not None:
                mark_stored(frame, uris[(name, key)])

    def _one_partition(self, context, key: str, config: Config, inputs: dict[str, Any], out_names: list[str],
                       keep_history: int = DEFAULT_KEEP
                       ) -> tuple[dict[str, tuple[pd.DataFrame, dict]], dict[str, int], pd.DataFrame | None]:
        """The body's result for one partition: per output its table and metadata, the facts the
        checks read, and the ledger rows to write with the tables (None: the stage records none)."""
        stage = StageContext(context, key, self.name)
        # A `haic retry` run re-processes only the items whose last verdict was `error`.
        retry = RetryScope.for_step(context, self.name, key, context.resources.storage.tables())
        if retry is not None:
            inputs = retry.filter_inputs(inputs)
        try:
            result = self.body(stage, config, **inputs)
        except StageFailure as failure:
            if failure.decisions:  # the partition's own failure, recorded; its table stays as it was
                write_ledger(stage.storage.tables(), self.name, key, self._ledger_rows(stage, config, failure.decisions),
                             keep_history)
            context.resources.warehouse.refresh(context.resources.storage.tables().local_root())
            raise Failure(description=failure.message) from failure
        tables = dict(result.tables) if result.tables else {out_names[0]: result.table}
        if retry is not None:
            tables = {name: retry.merge_table(name, table) for name, table in tables.items()}
        first = tables[out_names[0]]
        metadata: dict[str, Any] = {}
        decisions = list(result.decisions or ())
        ledger = None
        if self.records_decisions and result.decisions is not None:
            ledger = self._ledger_rows(stage, config, decisions, retry)
            summary, line = decision_metadata(decisions, config.model_dump())
            metadata.update(summary)
            stage.log.info(f"{self.name} [{key}]: {line}")
        metadata.update(table_metadata(first, self.column_docs))
        metadata.update(result.metadata)
        if result.preview is not None:
            metadata["preview"] = preview_table(first, result.preview)
        metadata.update(png_metadata(context.resources.storage.exports(), self.name, key, dict(result.pictures)))
        if result.sheets:
            metadata.update(sheet_metadata(context.resources.storage.exports(), context.resources.storage.tables(),
                                           self.name, key, dict(result.sheets), decisions))
        out = {out_names[0]: (first, metadata)}
        for name in out_names[1:]:
            out[name] = (tables[name], {**table_metadata(tables[name], self.column_docs),
                                        **result.output_metadata.get(name, {})})
        raw_rows = None
        if YIELD_BAND in self.checks:  # the accumulation's yield is over the shard's rows
            raw = context.resources.storage.tables().read("ledger/raw_metadata", key)
            raw_rows = 0 if raw is None else len(raw)
        return out, decision_facts(decisions, list(first.columns), raw_rows), ledger

    def _ledger_rows(self, stage: StageContext, config: Config, decisions: list[Decision],
                     retry: RetryScope | None = None) -> pd.DataFrame:
        """This partition's ledger rows of the stage (a retry keeps the rows of the items it did not retry)."""
        rows = ledger_table(decisions, stage=self.name, partition=stage.partition_key, config=config.model_dump(),
                            code_version=self.version, run_id=stage.run_id)
        return retry.merge_ledger(rows) if retry is not None else rows


def partitioned_stage(name: str, config_class: type[Config], *, ins: Sequence[str] | Mapping[str, AssetIn] = (),
                      outs: Mapping[str, str] | None = None, version: str = "1", kind: str | None = None,
                      resources: Sequence[str] = (), partitions: PartitionsDefinition | None = source_shards,
                      deps: Sequence[str | AssetDep] = (), settings_from: Mapping[str, str] | None = None,
                      fingerprint: Callable[[Config], str] | None = None, records_decisions: bool = True,
                      group: str | None = None, description: str | None = None, columns: Sequence[str] = (),
                      column_docs: Mapping[str, str] | None = None, checks: Sequence[str] = ()
                      ) -> Callable[[Callable[..., StageResult]], StageSpec]:
    """Declare a stage. Its group is the folder of the body's module (accumulation, haic_train,
    haicbench) unless `group` is given; its description is the body's docstring.

    ins: upstream assets (names, or name -> AssetIn for a partition mapping); outs: output name ->
    description for a stage with several outputs; version: bump when the code changes what the
    stage produces; kind: decode | gpu | llm (op tags, pools, model in the code version);
    resources: resource keys beyond storage and warehouse; settings_from: config fields whose
    deployment setting lives under another stage; fingerprint: more code-version parts; columns: the
    table's required columns; column_docs: column -> what it holds, for every output's column schema in
    the catalog (a column name means one thing in all of a stage's tables); checks: optional asset
    checks (see stage_checks).
    """
    if kind is not None and kind not in STEP_KINDS:
        raise ValueError(f"stage {name}: kind {kind!r} is not one of {STEP_KINDS}")

    def declare(body: Callable[..., StageResult]) -> StageSpec:
        stage_group = group or body.__module__.split(".")[-2]
        named_ins = {k: AssetIn(k) for k in ins} if not isinstance(ins, Mapping) else dict(ins)
        doc = description or body.__doc__ or ""
        return StageSpec(name=name, config_class=config_class, body=body, group=stage_group, version=version,
                         ins=named_ins, outs=dict(outs) if outs else {name: doc}, partitions=partitions, kind=kind,
                         resources=tuple(resources), deps=tuple(deps), settings_from=dict(settings_from or {}),
                         fingerprint=fingerprint, records_decisions=records_decisions, columns=tuple(columns),
                         column_docs=dict(column_docs or {}), checks=tuple(checks))

    return declare
