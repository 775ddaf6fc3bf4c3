"""A user's mistake at the shell is one line on stderr and an exit code, never a traceback, and a
command that fails leaves no partition behind (the real `haic` in a subprocess, its real instance)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.helpers import REPO_ROOT, dagster_instance


def haic(home: Path, *args: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("HAIC_", "OPENAI_", "GEMINI_"))}
    return subprocess.run([sys.executable, "-m", "haic_cli", *args], cwd=REPO_ROOT, capture_output=True, text=True,
                          env={**clean, "HAIC_HOME": str(home)}, timeout=300)


@pytest.mark.parametrize("command", [["check-caption"], ["check-qa", "--category", "count"]])
def test_a_check_of_a_missing_file_is_one_line(tmp_path, command):
    done = haic(tmp_path / "home", *command, "/missing.txt")
    assert (done.returncode, done.stdout, done.stderr) == (2, "", f"haic {command[0]}: no such file: /missing.txt\n")


def test_an_annotation_task_of_an_unknown_partition_is_one_line_and_registers_no_batch(tmp_path):
    home = tmp_path / "home"
    done = haic(home, "annotation-task", "b1", "--partition", "nosuch__x.csv")
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == ("haic annotation-task: no partition 'nosuch__x.csv'; `haic funnel` lists the sources "
                           "with rows. Nothing was registered.\n")
    with dagster_instance(home) as instance:
        instance.add_dynamic_partitions("source_shards", ["webvid__a.csv"])  # as the landing sensor does
    done = haic(home, "annotation-task", "b1", "--partition", "webvid__b.csv")
    assert (done.returncode, done.stderr) == (1, "haic annotation-task: no partition 'webvid__b.csv'; did you mean: "
                                                 "webvid__a.csv? Nothing was registered.\n")
    done = haic(home, "annotation-task", "b1", "--partition", "webvid__a.csv")  # registered, never curated
    assert (done.returncode, done.stderr) == (1, "haic annotation-task: action_filtered has no partition "
                                                 "'webvid__a.csv': run the main job for it first (haic run "
                                                 "webvid__a.csv). Nothing was registered.\n")
    with dagster_instance(home) as instance:
        assert instance.get_dynamic_partitions("annotation_batches") == []
        assert instance.get_runs() == []


def test_an_annotation_task_whose_run_fails_takes_its_batch_back(tmp_path):
    """The partition is curated, but its table is one the task cannot read (a table of another
    schema): the run fails after the batch was registered, and the batch goes again, so the next
    haicbench_split run from the UI does not meet it."""
    from haic_resources.storage.object_store import LocalObjectStore
    from haic_resources.storage.tables import TableStore

    home = tmp_path / "home"
    with dagster_instance(home) as instance:
        instance.add_dynamic_partitions("source_shards", ["webvid__a.csv"])
        instance.add_dynamic_partitions("annotation_batches", ["b0"])  # an earlier batch stays
    TableStore(LocalObjectStore(home / "tables"), home / "cache").write("action_filtered", "webvid__a.csv",
                                                                        pd.DataFrame({"clip_id": ["c1"]}))
    done = haic(home, "annotation-task", "b1", "--partition", "webvid__a.csv")
    assert done.returncode == 1
    assert done.stderr == "haic annotation-task: KeyError: 'video_id'; batch 'b1' removed again\n"
    assert done.stdout.splitlines()[-1].startswith("[1/1] annotation_tasks FAILED (")
    assert "Traceback" not in done.stdout
    with dagster_instance(home) as instance:
        assert instance.get_dynamic_partitions("annotation_batches") == ["b0"]
