"""`haic`'s parser: every command is listed once under its group, and a command imports only its group
(`haic why` answers without importing Dagster)."""

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


def test_why_reads_the_ledger_without_importing_dagster(tmp_path):
    from haic_core.decisions import dropped, kept
    from haic_core.ledger import ledger_rows
    from haic_platform.ledger import write_ledger
    from haic_resources.storage.object_store import LocalObjectStore
    from haic_resources.storage.tables import TableStore

    tables = TableStore(LocalObjectStore(tmp_path / "tables"), tmp_path / "cache")
    for stage, decision in (("clips", kept("s:1-c0", item_kind="clip", parent_id="s:1")),
                            ("videos", kept("s:1", item_kind="video"))):
        write_ledger(tables, stage, "s__a.csv", ledger_rows([decision], stage=stage, partition="s__a.csv",
                                                            config_hash="h", code_version="v", run_id="r"))
    probe = ("import sys; from haic_cli.main import main; code = main(['why', 's:1']); "
             "print(code, sorted(m for m in ('dagster', 'cv2', 'haic_assets') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True, check=True,
                         env={**os.environ, "HAIC_HOME": str(tmp_path)})
    lines = out.stdout.splitlines()
    assert lines[-1] == "0 []"
    assert [line.split()[:3] for line in lines[1:-1]] == [["videos", "video", "s:1"], ["clips", "clip", "s:1-c0"]]
