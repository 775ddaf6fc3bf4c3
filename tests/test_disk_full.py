"""A disk that fills while `haic` works: one line that says the disk is full and where, and no
partial file left to hold the space. HAIC_HOME is a real small file system (a tmpfs mounted in a
private mount namespace of the command, so nothing outside sees it and it goes with the command);
where this machine allows no mount namespace the tests skip and say so."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from haic_resources.pose.movenet import MOVENET_SHA256
from tests.helpers import REPO_ROOT

MODEL = f"movenet_multipose_lightning_{MOVENET_SHA256[:12]}.tflite"  # 9.6 MB, extracted on first use
SAMPLE_PARTITION = "webvid_sample__results_sample.csv"
# Names a write in progress has: our temporary files, and a model copy's.
PARTIAL = r"\( -name '*.part' -o -name '.tmp-*' \)"


def haic_line(*args: str) -> str:
    return " ".join([shlex.quote(sys.executable), "-m", "haic_cli", *map(shlex.quote, args)])


def on_small_disk(tmp_path: Path, size: str, script: str, timeout: int = 900) -> tuple[dict[str, str], Path]:
    """Run `script` (sh) with HAIC_HOME on a fresh tmpfs of `size`; each `step NAME COMMAND` in it
    records the command's exit code, stdout and stderr under NAME, and `leftovers` lists the
    partial files under HAIC_HOME (the tmpfs is gone once the namespace ends)."""
    home, out = tmp_path / "home", tmp_path / "out"
    home.mkdir()
    out.mkdir()
    prelude = f"""
set -u
mount -t tmpfs -o size={size} tmpfs {shlex.quote(str(home))} || exit 97
export HAIC_HOME={shlex.quote(str(home))}
step() {{ name=$1; shift; "$@" >{out}/$name.out 2>{out}/$name.err; echo $? >{out}/$name.rc; }}
leftovers() {{ find "$HAIC_HOME" -type f {PARTIAL} >{out}/leftovers; }}
"""
    namespace = ["unshare", "--mount", "--propagation", "private"] + ([] if os.geteuid() == 0 else ["--map-root-user"])
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HAIC_", "OPENAI_", "GEMINI_"))}
    done = subprocess.run([*namespace, "sh", "-c", prelude + script], cwd=REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)
    if done.returncode == 97 or "unshare:" in done.stderr:
        pytest.skip(f"no private mount namespace with a tmpfs here: {done.stderr.strip()}")
    assert done.returncode == 0, done.stderr
    results = {p.name: p.read_text() for p in out.iterdir()}
    return results, home


def test_a_command_that_fills_the_disk_says_so_in_one_line_and_leaves_no_partial_model(tmp_path, video):
    # `haic people` extracts the 9.6 MB pose model into cache/models/ first: 4 MB cannot hold it.
    clip = video("mmaction2_ntu_hug_2p_short.mp4")
    out, home = on_small_disk(tmp_path, "4m", f"step people {haic_line('people', str(clip))}; leftovers")
    assert out["people.rc"].strip() == "1"
    assert out["people.err"] == (f"haic people: disk full: no space left on {home} (writing {home}/cache/models/"
                                 f"{MODEL}): free some space there (or move HAIC_HOME) and run it again\n")
    assert out["leftovers"] == ""


@pytest.mark.slow
def test_a_run_that_fills_the_disk_says_where_in_one_line_and_leaves_no_partial_file(tmp_path):
    """The issue's case: the demo's run fills an 11 MB HAIC_HOME with the pose model's copy while
    human_presence starts; then, with the disk filled to the last byte, the next run cannot even
    write the Dagster instance's SQLite database (a 67-line "disk I/O error" before)."""
    out, home = on_small_disk(tmp_path, "11m", f"""
step demo {haic_line('demo')}
leftovers
head -c 64M /dev/zero > "$HAIC_HOME/filler" 2>/dev/null
step run {haic_line('run', SAMPLE_PARTITION)}
""")
    assert out["demo.rc"].strip() == "1"
    failed = [line for line in out["demo.out"].splitlines() if "FAILED" in line]
    assert len(failed) == 1 and failed[0].startswith("[5/7] human_presence FAILED (")
    assert failed[0].endswith(f" s): disk full: no space left on {home} (writing {home}/cache/models/{MODEL}): "
                              "free some space there (or move HAIC_HOME) and run it again")
    assert f"{SAMPLE_PARTITION}: run " in out["demo.out"] and "Traceback" not in out["demo.out"] + out["demo.err"]
    assert out["demo.err"] == ""
    assert out["leftovers"] == ""  # the model's partial copy went with the failure
    assert out["run.rc"].strip() == "1"
    assert out["run.err"] == (f"haic run: disk full: no space left on {home} (writing {home}/dagster): free some "
                              "space there (or move HAIC_HOME) and run it again\n")
