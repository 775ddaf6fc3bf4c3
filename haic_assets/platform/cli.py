"""`haic`: run the demo, open the UI, and answer lineage questions from the ledger.

    haic demo                 register the bundled sample source and run the main job on it
    haic funnel [--source S]  kept / dropped / error per stage and source
    haic why ITEM_ID          an item's trail through the stages, with reasons, values, thresholds
    haic add-shard FILE --source NAME   put a metadata file into the landing zone
    haic run PARTITION...     run the main job for partitions [--executor dask --scheduler ADDR]
    haic recurate [--dry-run] re-materialize only what is stale (changed settings, prompt, model, data)
    haic ui                   the Dagster UI on 127.0.0.1 (dagster dev with DAGSTER_HOME set)
    haic home                 where everything lives
    haic retry PARTITION [--stage S]   re-process only the items whose last verdict is error
    haic retry --release ITEM          let a quarantined item be retried again
    haic plan --videos N --mean-duration S   core-hours, GPU-hours, tokens and dollars for a whole source
    haic people FILE [--json]  the pose model's people, count and coverage in an image or a clip
    haic check-qa --category C FILE   read one raw QA answer as qa_pairs would
    haic check-caption FILE   check one caption against the standardized format
    haic annotation-task BATCH --partition P   export kept clips for an annotation batch
    haic evaluate --model M [--protocol standard|caption]   score a model on HAICBench
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from haic_resources.storage.home import REPO_ROOT, haic_home, prepare_dagster_home
from haic_resources.storage.landing import Shard, closest_keys, list_shards, shard_of_partition, shard_problem
from haic_core.sql_files import load_sql
from haic_resources.storage.warehouse import in_memory_warehouse

SAMPLE_SOURCE = "webvid_sample"
SAMPLE_DIR = REPO_ROOT / "samples" / SAMPLE_SOURCE


def _warehouse():
    """A private DuckDB connection over the tables, with the stages in pipeline order."""
    from haic_assets.platform.resources import build_resources
    from haic_assets.stages import STAGE_NAMES

    conn = in_memory_warehouse(build_resources()["storage"].tables().local_root(), STAGE_NAMES)
    if "ledger" in _views(conn) and "reason_code" not in {r[0] for r in conn.execute("DESCRIBE ledger").fetchall()}:
        # Ledgers written before reason codes: the same rows, with no code.
        conn.execute("ALTER VIEW ledger RENAME TO ledger_before_codes")
        conn.execute("CREATE VIEW ledger AS SELECT *, CAST(NULL AS VARCHAR) AS reason_code FROM ledger_before_codes")
    return conn


def _print_frame(frame: pd.DataFrame) -> None:
    with pd.option_context("display.max_rows", 500, "display.max_columns", 50, "display.width", 200,
                           "display.max_colwidth", 70):
        print(frame.to_string(index=False))


def cmd_funnel(args: argparse.Namespace) -> int:
    conn = _warehouse()
    if not _has_ledger(conn):
        print("The ledger is empty: run `haic demo` or materialize a partition first.")
        return 1
    frame = conn.execute(load_sql("funnel")).df()
    if not frame["pending"].any():  # items waiting in LLM batch jobs: a column only while there are some
        frame = frame.drop(columns="pending")
    if args.source:
        frame = frame[frame["source"] == args.source]
        if frame.empty:
            known = ", ".join(sorted(set(conn.execute(load_sql("funnel")).df()["source"])))
            print(f"No ledger rows for source {args.source!r}; sources with rows: {known}.")
            return 1
    print(f"Funnel (HAIC_HOME={haic_home().root})")
    _print_frame(frame)
    return 0


def cmd_why(args: argparse.Namespace) -> int:
    conn = _warehouse()
    if not _has_ledger(conn):
        print("The ledger is empty: run `haic demo` or materialize a partition first.")
        return 1
    from haic_assets.platform.why_trail import trail_of

    trail = trail_of(conn, args.item_id)
    if trail.empty:
        print(f"No ledger rows for {args.item_id!r}. Ids look like 'webvid:1001' (video) or a clip id; "
              "`haic funnel` lists the stages.")
        return 1
    sheets = {}
    if "contact_sheets" in _views(conn):
        for sheet in conn.execute(load_sql("contact_sheets_of"), [sorted(set(trail["item_id"]))]).df().itertuples():
            sheets[(sheet.stage, sheet.item_id)] = sheet.uri
    print(f"Trail of {args.item_id}:")
    for row in trail.itertuples(index=False):
        evidence = ""
        if row.metric is not None and not pd.isna(row.value):
            evidence = f"  [{row.metric}={row.value:.6g}"
            evidence += f", threshold {row.threshold:.6g}]" if not pd.isna(row.threshold) else "]"
        indent = "  " * max(0, int(row.depth) + 2)
        code = "" if pd.isna(row.reason_code) else f"{row.reason_code}: "
        print(f"{indent}{row.stage:<18} {row.item_kind:<6} {row.item_id:<40} {row.verdict.upper():<8} "
              f"{code}{row.reason}{evidence}")
        if (row.stage, row.item_id) in sheets:
            print(f"{indent}    contact sheet: {sheets[(row.stage, row.item_id)]}")
        if args.verbose:
            print(f"{indent}    partition={row.partition} config={row.config_hash} code={row.code_version} "
                  f"run={row.run_id} at={row.decided_at}")
    return 0


def _has_ledger(conn) -> bool:
    return "ledger" in _views(conn)


def _views(conn) -> set[str]:
    return {name for (name,) in conn.execute("SELECT table_name FROM information_schema.tables").fetchall()}


def add_shard(file: Path, source: str, source_yaml: str | None = None) -> Shard:
    """Put a metadata file into landing/<source>/ (a local folder, or HAIC_LANDING_URI in S3)."""
    from haic_assets.platform.resources import build_resources

    shard = shard_of_partition(Shard(source, file.name).partition_key)  # refuses names no partition may have
    landing = build_resources()["storage"].landing()
    landing.put_file(shard.key, file)
    if source_yaml is not None:
        landing.put_bytes(f"{source}/source.yaml", source_yaml.encode())
    return shard


def cmd_add_shard(args: argparse.Namespace) -> int:
    file = Path(args.file)
    if not file.is_file():
        print(f"haic add-shard: no such file: {file}", file=sys.stderr)
        return 2
    problem = shard_problem(f"{args.source}/{file.name}")
    if problem:
        print(f"haic add-shard: {problem}", file=sys.stderr)
        return 2
    source_yaml = None
    if args.source_yaml:
        source_yaml_file = Path(args.source_yaml)
        if not source_yaml_file.is_file():
            print(f"haic add-shard: no such file: {source_yaml_file}", file=sys.stderr)
            return 2
        source_yaml = source_yaml_file.read_text()
    shard = add_shard(file, args.source, source_yaml=source_yaml)
    print(f"landing/{shard.key} written" + (f" with landing/{args.source}/source.yaml" if source_yaml else "")
          + f"; the landing sensor will add partition {shard.partition_key!r} and run curate_source for it "
          f"(or run: haic run {shard.partition_key})")
    return 0


# Warnings only on the console: the progress display prints the stage summaries and progress
# lines from the run's events (every event is in the UI).
PROGRESS_CONSOLE = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
# INFO on the console: stage summaries, not every Dagster engine event (all are in the UI).
QUIET_CONSOLE = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}


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
    (haic_assets/platform/run_origin.py), showing its progress (a bar at a terminal, plain lines
    elsewhere); print and return whether it succeeded."""
    import uuid

    from haic_assets.platform.cli_progress import run_with_progress, step_count
    from haic_assets.platform.jobs import MAIN_JOB
    from haic_assets.platform.run_origin import execute_with_origin

    job, run_id = defs.resolve_job_def(MAIN_JOB), str(uuid.uuid4())
    _, success = run_with_progress(instance, run_id, step_count(job, asset_selection), lambda: execute_with_origin(
        instance, MAIN_JOB, partition_key, asset_selection, tags, PROGRESS_CONSOLE, run_id=run_id))
    print(f"{partition_key}: run {run_id} {'SUCCESS' if success else 'FAILURE'}")
    return success


def run_partition(partition_key: str) -> bool:
    """Run the main job for one partition, registering the partition first if it is new and its
    file is in the landing zone (ValueError, with the closest known keys, when it is neither)."""
    from dagster import DagsterInstance

    from haic_assets.platform.partitions import source_shards
    from haic_assets.platform.resources import build_resources

    shard = shard_of_partition(partition_key)  # before the key becomes a partition, a ledger or a table path
    os.environ["DAGSTER_HOME"] = str(prepare_dagster_home())
    landing = build_resources()["storage"].landing()
    with DagsterInstance.get() as instance:  # checked before the definitions load: a typo answers at once
        known = instance.get_dynamic_partitions(source_shards.name)
    if partition_key not in known and not landing.exists(shard.key):
        guesses = closest_keys(partition_key, known + [s.partition_key for s in list_shards(landing)[0]])
        raise ValueError(f"no partition {partition_key!r} and no landing file landing/{shard.key}; "
                         + (f"did you mean: {', '.join(guesses)}?" if guesses else "no shard has landed yet.")
                         + " Nothing was registered.")
    with instance_and_definitions() as (instance, defs):
        if not instance.has_dynamic_partition(source_shards.name, partition_key):
            instance.add_dynamic_partitions(source_shards.name, [partition_key])
            print(f"registered partition {partition_key}")
        return execute_main_job(defs, instance, partition_key)


def cmd_demo(args: argparse.Namespace) -> int:
    from haic_assets.platform.resources import llm_resource
    from haic_resources.llm.resource import NOT_CONFIGURED

    layout = haic_home()
    print(f"HAIC_HOME={layout.root}")
    if not llm_resource().configured:
        print(f"Note: {NOT_CONFIGURED}")
    shard = add_shard(SAMPLE_DIR / "results_sample.csv", SAMPLE_SOURCE,
                      source_yaml=f"kind: webvid\nmedia_root: {REPO_ROOT / 'samples' / 'media'}\n")
    print(f"sample shard: landing/{shard.key} -> partition {shard.partition_key}")
    ok = run_partition(shard.partition_key)
    print()
    cmd_funnel(argparse.Namespace(source=None))
    print(f"\nNext: `haic why webvid_sample:1003` (why an item was dropped), `haic ui` (the Dagster UI).")
    return 0 if ok else 1


def cmd_recurate(args: argparse.Namespace) -> int:
    """List (and unless --dry-run, run) the stale asset partitions: what the weekly schedule does."""
    from haic_assets.platform.jobs import MAIN_JOB
    from haic_assets.platform.recuration import recuration_requests, summarize

    with instance_and_definitions() as (instance, defs):
        requests, stale = recuration_requests(instance, defs.resolve_job_def(MAIN_JOB), defs.resolve_asset_graph())
        if not requests:
            print("Nothing is stale.")
            return 0
        for partition, reasons in summarize(stale).items():
            print(f"{partition}:")
            for reason in reasons:
                print(f"  {reason}")
        if args.dry_run:
            return 0
        results = [execute_main_job(defs, instance, r.partition_key, r.asset_selection, r.tags) for r in requests]
        return 0 if all(results) else 1


DEV_SUPERSEDED_NOTICE = "Function `dev_command` is superseded"


def cmd_ui(args: argparse.Namespace) -> int:
    dagster_home = prepare_dagster_home()
    lock = _single_ui_lock(dagster_home)
    if lock is None:
        print(f"haic ui: another `haic ui` is already running on {dagster_home} (one UI and one daemon per "
              "HAIC_HOME); stop it first, or set HAIC_HOME to another home.", file=sys.stderr)
        return 1
    env = dict(os.environ, DAGSTER_HOME=str(dagster_home))
    # `dagster dev` stays the way to run webserver + daemon + code server on one machine until the
    # `dg` CLI (a separate package and project layout) is adopted; its notice saying so is ours to
    # silence, not the operator's to read at every start. Run from DAGSTER_HOME, so the only
    # dagster.yaml in sight is the one in use. Runs log to this terminal at INFO (dagster.yaml's
    # python_logs), not every DEBUG engine event.
    command = [sys.executable, "-W", f"ignore:{DEV_SUPERSEDED_NOTICE}", "-m", "dagster", "dev", "-h", args.host,
               "-p", str(args.port), "-w", str(REPO_ROOT / "workspace.yaml")]
    print(f"DAGSTER_HOME={env['DAGSTER_HOME']}; UI at http://{args.host}:{args.port} (Ctrl-C stops it)")
    process = subprocess.Popen(command, env=env, cwd=dagster_home)
    try:
        return process.wait()
    except KeyboardInterrupt:
        # At a terminal dagster dev gets the same Ctrl-C; when only we were interrupted, pass it on,
        # so its webserver and daemon shut down rather than outlive us.
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.terminate()
        print("haic ui: stopped")
        return 0
    finally:
        lock.close()


def _single_ui_lock(dagster_home: Path):
    """An exclusive lock on DAGSTER_HOME/.haic-ui.lock for the life of this process, or None when
    another `haic ui` holds it (a second UI would start a second daemon on the same instance)."""
    import fcntl

    handle = open(dagster_home / ".haic-ui.lock", "w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


def cmd_retry(args: argparse.Namespace) -> int:
    """Retry only the failed items of a partition; quarantine items that keep failing."""
    from haic_assets.platform.retry import release_item, run_retry

    if args.release:
        return release_item(args.release)
    if not args.partition:
        print("haic retry: give a PARTITION (or --release ITEM)")
        return 2
    return run_retry(args.partition, args.stage, args.max_attempts, args.dry_run, execute_main_job)


def cmd_home(args: argparse.Namespace) -> int:
    layout = haic_home()
    for name in ("root", "dagster", "landing", "tables", "media", "cache", "exports", "warehouse"):
        print(f"{name:<10} {getattr(layout, name)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="haic", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("demo", help="run the main job on the bundled sample").set_defaults(func=cmd_demo)
    p = sub.add_parser("funnel", help="kept/dropped/error per stage and source",
                       description="Kept, dropped and error counts per stage and source, from the ledger.")
    p.add_argument("--source", help="only this source")
    p.set_defaults(func=cmd_funnel)
    p = sub.add_parser("why", help="an item's trail through the stages",
                       description="Every stage's decision on an item and its children (clips of a video), "
                                   "with reasons, measured values and thresholds.")
    p.add_argument("item_id", help="a video id like webvid:1001, or a clip id")
    p.add_argument("-v", "--verbose", action="store_true", help="also config hash, code version, run id")
    p.set_defaults(func=cmd_why)
    p = sub.add_parser("add-shard", help="copy a metadata file into the landing zone",
                       description="Copy a metadata file into landing/<source>/; the landing sensor then adds "
                                   "its partition and runs the main job.")
    p.add_argument("file", help="a WebVid CSV, an Omega Parquet, or a file that source.yaml maps")
    p.add_argument("--source", required=True, help="source name: lower-case letters, digits, '-' and single '_'")
    p.add_argument("--source-yaml", help="a source.yaml to install beside it (columns, kind, media_root)")
    p.set_defaults(func=cmd_add_shard)
    p = sub.add_parser("run", help="run the main job for source shards",
                       description="Run the main job curate_source for source shards (several: one run over their "
                                   "range), in this process or on an executor (issue 17: --executor).")
    p.add_argument("partition", nargs="+", help="<source>__<shard file name>, e.g. webvid_sample__results_sample.csv")
    from haic_assets.platform.cli_executor import add_run_options, cmd_run as cmd_run_on_executor

    add_run_options(p)
    p.set_defaults(func=cmd_run_on_executor)
    p = sub.add_parser("recurate", help="re-materialize only stale asset partitions (what the schedule does)")
    p.add_argument("--dry-run", action="store_true", help="only list what is stale and why")
    p.set_defaults(func=cmd_recurate)
    p = sub.add_parser("ui", help="start the Dagster UI (dagster dev) on 127.0.0.1",
                       description="The Dagster UI and daemon on this HAIC_HOME's instance (one per home).")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=3000)
    p.set_defaults(func=cmd_ui)
    sub.add_parser("home", help="print where everything lives").set_defaults(func=cmd_home)
    p = sub.add_parser("retry", help="re-process only the failed items of a partition")
    p.add_argument("partition", nargs="?")
    p.add_argument("--stage", help="only this stage's failed items")
    p.add_argument("--max-attempts", type=int, default=3, help="quarantine an item after this many failed retries")
    p.add_argument("--dry-run", action="store_true", help="only list what would be retried")
    p.add_argument("--release", metavar="ITEM", help="release a quarantined item")
    p.set_defaults(func=cmd_retry)
    from haic_assets.platform.cli_evaluate import add_evaluate_parser  # issue 15: `haic evaluate`

    add_evaluate_parser(sub)
    from haic_assets.platform.cli_checks import add_check_commands  # issue 11: `haic check-qa`, `haic check-caption`

    add_check_commands(sub)
    from haic_assets.platform.cli_people import add_people_command  # issue 14: `haic people`

    add_people_command(sub)
    from haic_assets.platform.cli_plan import add_plan_command  # issue 17: `haic plan`

    add_plan_command(sub)
    from haic_assets.platform.cli_annotate import add_annotation_task_parser  # issue 15: `haic annotation-task`

    add_annotation_task_parser(sub)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
