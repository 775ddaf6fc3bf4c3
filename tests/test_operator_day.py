"""The operator's day on the bundled sample, run as a person runs it (`haic demo` in a subprocess):
reasons are codes with their numbers, contact sheets are the borderline cases and reachable from
the ledger, metadata is stored once, the checks judge the yield, and the run shows its progress."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterInstance
from dagster._core.instance.ref import InstanceRef

from tests.helpers import REPO_ROOT, SAMPLE_PARTITION, ledger, without_llm
from tests.timing import limit

pytestmark = pytest.mark.slow  # one `haic demo` (the sample through the main job) for the module

THUMBNAIL = re.compile(r"data:image/[a-z]+;base64,[A-Za-z0-9+/=]+")
PRESENCE_DROP = "webvid_sample:1002-07770f0cba"
KEPT_CLIP = "webvid_sample:1001-6233393577"


def haic(home: Path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("GEMINI_API_KEY", "OPENAI_API_KEY", "HAIC_LLM_PROVIDER")}
    return subprocess.run([sys.executable, "-m", "haic_cli", *args], env={**env, "HAIC_HOME": str(home)},
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=limit(timeout))


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    home = tmp_path_factory.mktemp("operator") / "home"
    done = haic(home, "demo")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return home, done.stdout


@pytest.fixture
def instance(demo):
    with DagsterInstance.from_ref(InstanceRef.from_dir(str(demo[0] / "dagster"))) as instance:
        yield instance


def test_every_ledger_row_has_a_reason_code_and_the_codes_are_the_papers_tests(demo, monkeypatch):
    without_llm(monkeypatch)
    book = ledger(demo[0])
    assert book["reason_code"].notna().all()
    codes = {(r.stage, r.item_id): r.reason_code for r in book.itertuples() if r.verdict != "kept"}
    codes.update({(r.stage, r.item_id): r.reason_code for r in book.itertuples() if r.stage != "raw_metadata"})
    assert codes[("metadata_filtered", "webvid_sample:1003")] == "low_resolution"
    assert codes[("metadata_filtered", "webvid_sample:1004")] == "no_verb"
    assert codes[("raw_metadata", "webvid_sample:results_sample.csv#row7")] == "duplicate_id"
    assert codes[("human_presence", PRESENCE_DROP)] == "low_box_coverage"
    assert codes[("human_presence", KEPT_CLIP)] == "kept"
    assert codes[("action_filtered", KEPT_CLIP)] == "kept"


def test_haic_why_prints_the_code_the_numbers_and_the_contact_sheet(demo):
    home, _ = demo
    done = haic(home, "why", PRESENCE_DROP, timeout=300)
    assert done.returncode == 0, done.stderr
    line = next(x for x in done.stdout.splitlines() if "human_presence" in x)
    assert line.split(None, 3)[3] == ("DROPPED  low_box_coverage: box_coverage=0.0851 < 0.1 in 7/16 sampled frames  "
                                      "[box_coverage=0.0851032, threshold 0.1]")
    sheet = re.search(r"contact sheet: (\S+)", done.stdout).group(1)
    expected = (home / "exports" / "previews" / "human_presence" / SAMPLE_PARTITION / "sheets"
                / "webvid_sample_1002-07770f0cba.png")
    assert sheet == str(expected)
    assert expected.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_drops_are_grouped_by_code_with_the_nearest_item_and_its_numbers(instance):
    metadata = instance.get_latest_materialization_event(AssetKey("human_presence")).asset_materialization.metadata
    rows = [r.data for r in metadata["dropped_by_reason"].records]
    assert rows == [{"verdict": "dropped", "reason_code": "low_box_coverage", "items": 1, "nearest_item": PRESENCE_DROP,
                     "value": "0.0851", "threshold": "0.1",
                     "reason": "box_coverage=0.0851 < 0.1 in 7/16 sampled frames"}]
    sheets = metadata["contact_sheets"].value
    # One sheet per kept clip and per drop code (kept_contact_sheets = 8, contact_sheets = 2; one item of each here).
    assert sheets.count("data:image/jpeg;base64,") == 2
    assert "**dropped · low_box_coverage** webvid_sample:1002-07770f0cba: box_coverage=0.0851 < 0.1" in sheets


def test_metadata_is_stored_once_and_only_thumbnails_of_pictures(demo):
    """Bytes of the run's event log (SQLite event_logs) per materialization, pictures aside, stay under
    a bound; the pictures are in it once each, as thumbnails. Before this change the demo's run
    stored 681 KB (274 KB without pictures) for 8 materializations, every metadata entry twice."""
    home, _ = demo
    runs = [p for p in (home / "dagster" / "history" / "runs").glob("*.db") if p.name != "index.db"]
    assert len(runs) == 1
    with sqlite3.connect(runs[0]) as db:
        events = db.execute("SELECT dagster_event_type, event FROM event_logs").fetchall()
    materializations = sum(kind == "ASSET_MATERIALIZATION" for kind, _ in events)
    assert materializations == 8
    thumbnails = [(kind, len(t)) for kind, event in events for t in THUMBNAIL.findall(event)]
    assert [kind for kind, _ in thumbnails] == ["ASSET_MATERIALIZATION"] * 3  # 2 presence sheets, 1 action sheet
    assert all(size <= 60_000 * 4 / 3 + 32 for _, size in thumbnails)
    rest = sum(len(event) for _, event in events) - sum(size for _, size in thumbnails)
    assert rest / materializations < 40_000
    outputs = [json.loads(event) for kind, event in events if kind == "STEP_OUTPUT"]
    assert all(len(json.dumps(e)) < 4_000 for e in outputs)  # the table metadata is not repeated here


def test_the_yield_check_warns_outside_the_papers_band(instance):
    from dagster import AssetCheckKey

    record = instance.event_log_storage.get_latest_asset_check_execution_by_key(
        [AssetCheckKey(AssetKey("action_filtered"), "yield_within_band")])
    evaluation = next(iter(record.values())).event.dagster_event.event_specific_data
    assert (evaluation.passed, evaluation.severity.value) == (False, "WARN")
    assert evaluation.description == "kept 1 of 8 raw_metadata rows = 12.50 %, band 0.31-1.3 %"


def test_the_run_prints_its_progress_as_plain_lines_when_not_at_a_terminal(demo):
    _, out = demo
    lines = out.splitlines()
    assert "registered partition webvid_sample__results_sample.csv" in lines
    assert "[1/7] raw_metadata started" in lines
    assert any(re.fullmatch(r"\[7/7\] action_filtered done \(\d+\.\d s\)", x) for x in lines)
    assert any(re.fullmatch(r"    human_presence \[webvid_sample__results_sample.csv\] people: 2/2 \(100 %\), .*", x)
               for x in lines)


def test_haic_why_lists_a_videos_stages_and_then_its_clips_in_one_order(demo):
    """Issue 29: one order, the pipeline's: the video's stages, then each clip's, as the job ran them."""
    home, _ = demo
    done = haic(home, "why", "webvid_sample:1001", timeout=300)
    assert done.returncode == 0, done.stderr
    rows = [line.split()[:3] for line in done.stdout.splitlines()[1:] if not line.strip().startswith("contact sheet")]
    assert [(stage, item) for stage, _, item in rows] == [
        ("raw_metadata", "webvid_sample:1001"), ("metadata_filtered", "webvid_sample:1001"),
        ("videos", "webvid_sample:1001"), ("clips", KEPT_CLIP), ("human_presence", KEPT_CLIP),
        ("pose_tracks", KEPT_CLIP), ("action_filtered", KEPT_CLIP),
        ("raw_metadata", "webvid_sample:results_sample.csv#row7")]  # the shard's repeated row of this video
