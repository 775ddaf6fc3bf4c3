"""What several commands share: the instance and definitions, the main job run with progress, a
private warehouse connection, and the error a command raises for a user's mistake."""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import TYPE_CHECKING, Sequence

from haic_resources.storage.home import prepare_dagster_home

if TYPE_CHECKING:  # pandas is imported by the commands that print frames: `haic why` and `haic funnel` do not
    import pandas as pd

# Nothing on the console: the progress display prints the stage summaries, progress lines,
# warnings and a failed step's reason in one line from the run's events (the tracebacks are in
# the run's events, in the UI).
PROGRESS_CONSOLE = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
# INFO on the console: stage summaries, not every Dagster engine event (all are in the UI).
QUIET_CONSOLE = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}


class UserError(Exception):
    """A mistake of the person at the keyboard (a missing file, an unknown partition, a bad value):
    `haic` prints it as one line and exits with `exit_code`, never with a traceback."""

    def __init__(self, message: str, exit_code: int = 2):
        super().__init__(message)
        self.exit_code = exit_code


@contextmanager
def instance_and_definitions():
    """The persistent Dagster instance under HAIC_HOME (the one the UI shows) and our definitions."""
    os.environ["DAGSTER_HOME"] = str(prepare_dagster_home())
    from dagster import DagsterInstance

    from haic_assets.definitions import build_definitions

    with DagsterInstance.get() as instance:
        yield instance, build_definitions()


def execute_main_job(defs, instance, partition_key: str, asset_selection=None, tags=None) -> bool:
    """Run the main job for one partition in this process, as a run the UI can re-execute
    (haic_platform/run_origin.py), showing its progress (a bar at a terminal, plain lines
    elsewhere); print and return whether it succeeded. No `asset_selection`: a whole shard's run
    (without an LLM backend, less the caption stages)."""
    import uuid

    from haic_assets.platform.jobs import MAIN_JOB
    from haic_platform.run_origin import execute_with_origin
    from haic_cli.progress import run_with_progress, step_count

    if asset_selection is None:
        asset_selection = shard_selection(defs)
    job, run_id = defs.resolve_job_def(MAIN_JOB), str(uuid.uuid4())
    _, success = run_with_progress(instance, run_id, step_count(job, asset_selection), lambda: execute_with_origin(
        instance, MAIN_JOB, partition_key, asset_selection, tags, PROGRESS_CONSOLE, run_id=run_id))
    print(f"{partition_key}: run {run_id} {'SUCCESS' if success else 'FAILURE'}")
    return success


def shard_selection(defs):
    """What a whole shard's run materializes in this deployment (None: the whole main job)."""
    from haic_assets.platform.jobs import shard_run_selection

    return shard_run_selection(defs.resolve_asset_graph(), defs.resources["llm"].configured)


def execute_job(defs, instance, job_name: str, partition_key: str | None = None, ops: dict | None = None):
    """Run `job_name` (for `partition_key`, with `ops` config) in this process, showing its progress
    as `haic run` does; (its result, why it failed in one line, or "")."""
    import uuid

    from haic_cli.progress import run_with_progress, step_count, step_failure_reason

    job, run_id = defs.resolve_job_def(job_name), str(uuid.uuid4())
    result = run_with_progress(instance, run_id, step_count(job), lambda: job.execute_in_process(
        partition_key=partition_key, instance=instance, raise_on_error=False, run_id=run_id,
        run_config={**PROGRESS_CONSOLE, **({"ops": ops} if ops else {})}))
    reasons = dict.fromkeys(step_failure_reason(e) for e in result.all_events if e.is_step_failure)
    return result, "; ".join(r for r in reasons if r)


def stage_config(stage: str):
    """The stage's config with $HAIC_HOME/settings.yaml applied, checked as the definitions check it
    (a value out of range is one line naming the file and the key)."""
    from haic_platform.settings import load_settings
    from haic_assets.stages import settings_fields, stage_named

    return stage_named(stage).config_with_settings(load_settings(settings_fields()))()


def home_tables():
    """The home's table store (HAIC_HOME, HAIC_TABLES_URI), the one the storage resource opens, without
    importing Dagster: `haic why` and `haic funnel` only read tables."""
    from haic_resources.storage.home import env_setting, haic_home
    from haic_resources.storage.s3 import s3_settings_from_env
    from haic_resources.storage.tables import table_store

    return table_store(haic_home(), env_setting("HAIC_TABLES_URI"), s3_settings_from_env())


def warehouse():
    """A private DuckDB connection over the tables, with the stages in pipeline order."""
    from haic_core.pipeline_order import PIPELINE_STAGES
    from haic_resources.storage.warehouse import in_memory_warehouse

    conn = in_memory_warehouse(home_tables().local_root(), PIPELINE_STAGES)
    if "ledger" in views(conn) and "reason_code" not in {r[0] for r in conn.execute("DESCRIBE ledger").fetchall()}:
        # Ledgers written before reason codes: the same rows, with no code.
        conn.execute("ALTER VIEW ledger RENAME TO ledger_before_codes")
        conn.execute("CREATE VIEW ledger AS SELECT *, CAST(NULL AS VARCHAR) AS reason_code FROM ledger_before_codes")
    return conn


def views(conn) -> set[str]:
    return {name for (name,) in conn.execute("SELECT table_name FROM information_schema.tables").fetchall()}


def has_ledger(conn) -> bool:
    return "ledger" in views(conn)


EMPTY_LEDGER = "The ledger is empty: run `haic demo` or materialize a partition first."


def print_frame(frame: pd.DataFrame) -> None:
    import pandas as pd

    with pd.option_context("display.max_rows", 500, "display.max_columns", 50, "display.width", 200,
                           "display.max_colwidth", 70):
        print(frame.to_string(index=False))


def print_rows(columns: Sequence[str], rows: Sequence[Sequence]) -> None:
    """Rows as `print_frame` prints them, for commands that answer without pandas (its import was a
    third of `haic funnel`'s time): each column right-aligned to its widest cell, one space apart, and
    a number column's header one space wider, as pandas leaves room for a sign. The same text as
    before, so scripts that read it keep working (tests/test_warehouse_funnel.py)."""
    headers = [(" " if rows and all(isinstance(row[i], (int, float)) and not isinstance(row[i], bool) for row in rows)
                else "") + name for i, name in enumerate(columns)]
    cells = [headers] + [[str(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    for row in cells:
        print(" ".join(cell.rjust(width) for cell, width in zip(row, widths)))
