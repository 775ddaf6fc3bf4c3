"""`haic`'s parser: every command is listed once under its group, and a command imports only its group
(`haic why` and `haic funnel` answer without importing Dagster or pandas: their imports were most of
each command's time at WebVid's scale, bench/bench_lineage_scale.py)."""

from __future__ import annotations

import argparse
import importlib
import os
import subprocess
import sys

from haic_cli.main import COMMAND_GROUPS, build_parser
from tests.helpers import REPO_ROOT


def test_each_group_adds_exactly_the_commands_the_table_names():
    for group, commands in COMMAND_GROUPS.items():
        sub = argparse.ArgumentParser().add_subparsers()
        importlib.import_module(f"haic_cli.{group}").register(sub)
        assert sorted(sub.choices) == sorted(commands), group
    every = [c for commands in COMMAND_GROUPS.values() for c in commands]
    assert len(every) == len(set(every))


def test_help_and_a_mistyped_command_list_every_command():
    choices = build_parser(["whyy"])._subparsers._group_actions[0].choices
    assert list(choices) == [c for commands in COMMAND_GROUPS.values() for c in commands]


def test_why_and_funnel_do_not_import_dagster():
    probe = ("import sys; from haic_cli.main import build_parser; build_parser(['why', 'x']).parse_args(['why', 'x']); "
             "build_parser(['funnel']); print(sorted(m for m in ('dagster', 'cv2', 'haic_assets') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_why_and_funnel_read_the_ledger_without_importing_dagster_or_pandas(tmp_path):
    from haic_core.decisions import dropped, kept
    from haic_core.ledger import ledger_rows
    from haic_platform.ledger import write_ledger
    from haic_resources.storage.object_store import LocalObjectStore
    from haic_resources.storage.tables import TableStore

    tables = TableStore(LocalObjectStore(tmp_path / "tables"), tmp_path / "cache")
    for stage, decisions in (("clips", [kept("s:1-c0", item_kind="clip", parent_id="s:1"),
                                        dropped("s:1-c1", "shorter than 5 s", item_kind="clip", parent_id="s:1")]),
                             ("videos", [kept("s:1", item_kind="video")])):
        write_ledger(tables, stage, "s__a.csv", ledger_rows(decisions, stage=stage, partition="s__a.csv",
                                                            config_hash="h", code_version="v", run_id="r"))
    heavy = "('dagster', 'pandas', 'cv2', 'haic_assets')"
    for command in (["why", "s:1"], ["funnel"]):
        probe = (f"import sys; from haic_cli.main import main; code = main({command!r}); "
                 f"print(code, sorted(m for m in {heavy} if m in sys.modules))")
        out = subprocess.run([sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True, check=True,
                             env={**os.environ, "HAIC_HOME": str(tmp_path)})
        lines = out.stdout.splitlines()
        assert lines[-1] == "0 []", command
        if command[0] == "why":
            assert [line.split()[:4] for line in lines[1:-1]] == [
                ["videos", "video", "s:1", "KEPT"], ["clips", "clip", "s:1-c0", "KEPT"], ["clips", "clip", "s:1-c1", "DROPPED"]]
        else:
            assert [line.split() for line in lines[1:-1]] == [
                ["source", "stage", "item_kind", "kept", "dropped", "error", "total"],
                ["s", "videos", "video", "1", "0", "0", "1"], ["s", "clips", "clip", "1", "1", "0", "2"]]


def test_a_run_started_with_sigint_and_sigterm_ignored_leaves_nothing_holding_its_output(tmp_path):
    """As `haic run … &` from a script starts it: the run ends, and no log tail of Dagster's keeps its
    stdout open (communicate() returns once haic has exited)."""
    import signal

    from tests.helpers import land_sample
    from tests.timing import limit

    land_sample(tmp_path / "home")
    env = {**os.environ, "HAIC_HOME": str(tmp_path / "home")}
    for name in ("GEMINI_API_KEY", "OPENAI_API_KEY", "OPENAI_BASE_URL", "HAIC_LLM_PROVIDER"):
        env.pop(name, None)

    def ignore_stop_signals():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)

    run = subprocess.Popen([sys.executable, "-m", "haic_cli", "run", "webvid_sample__results_sample.csv"], env=env,
                           cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           preexec_fn=ignore_stop_signals)
    out, err = run.communicate(timeout=limit(600))
    assert run.returncode == 0, err[-2000:]
    assert "run " in out and out.rstrip().endswith("SUCCESS")
