"""Re-curation of only what changed: a new motion threshold re-runs the filtered set and what
depends on it; every other asset keeps its materialization and the caption comes from the cache."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
import os
import subprocess
import sys

import pytest
from dagster import AssetKey, AssetRecordsFilter, evaluate_automation_conditions

from haic_assets.definitions import build_definitions
from tests.helpers import (LLM_SETTINGS, REPO_ROOT, SAMPLE_PARTITION, dagster_instance, land_sample, ledger,
                           run_partition, run_sample, without_llm)
from tests.llm_servers import FakeGeminiServer
from tests.test_captions_pipeline import GOOD_CAPTION, SECRET
from tests.timing import limit

pytestmark = pytest.mark.slow

UPSTREAM = ["raw_metadata", "metadata_filtered", "videos", "clips", "human_presence", "person_detections",
            "pose_tracks"]
TICK = datetime(2026, 11, 30, 3, 0, tzinfo=timezone.utc)
RECURATED = ["action_filtered", "captions", "caption_judgement", "haic_train"]


def materializations(instance) -> dict[str, int]:
    return {name: len(instance.fetch_materializations(
        AssetRecordsFilter(asset_key=AssetKey(name), asset_partitions=[SAMPLE_PARTITION]), limit=100).records)
        for name in UPSTREAM + RECURATED}


def haic(*args, env) -> subprocess.CompletedProcess:
    # A new process, like a reloaded code location: settings are read when definitions load.
    return subprocess.run([sys.executable, "-m", "haic_cli", *args], env=env, cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=limit(600))


def test_a_new_motion_threshold_recurates_only_the_filtered_set_and_its_dependents(tmp_path, monkeypatch):
    home = tmp_path / "home"
    with FakeGeminiServer(GOOD_CAPTION) as server:
        env = {**os.environ, "HAIC_HOME": str(home), "GEMINI_API_KEY": SECRET, "GEMINI_BASE_URL": server.base_url}
        env.pop("HAIC_SETTINGS", None)
        for name, value in env.items():
            if name in ("HAIC_HOME", "GEMINI_API_KEY", "GEMINI_BASE_URL"):
                monkeypatch.setenv(name, value)
        land_sample(home)
        first = haic("run", SAMPLE_PARTITION, env=env)  # a code location loaded with Gemini configured
        assert first.returncode == 0, first.stderr[-3000:]
        defs = build_definitions()
        with dagster_instance(home) as instance:
            before = materializations(instance)
        assert all(before[name] == 1 for name in UPSTREAM + RECURATED)
        requests_before = server.total_requests
        assert requests_before == 1

        # The same answer in a shell without the LLM variables, less what the backend enables (issue 29).
        no_llm = {name: value for name, value in env.items() if name not in LLM_SETTINGS}
        assert "Nothing is stale." in haic("recurate", "--dry-run", env=env).stdout
        assert "Nothing is stale." in haic("recurate", "--dry-run", env=no_llm).stdout
        (home / "settings.yaml").write_text("action_filtered:\n  motion_l1_min: 0.1\n")
        dry = haic("recurate", "--dry-run", env=env)
        assert dry.returncode == 0, dry.stderr[-2000:]
        stale = [line.strip().split(":")[0] for line in dry.stdout.splitlines() if line.startswith("  ")]
        assert stale == RECURATED
        dry_no_llm = haic("recurate", "--dry-run", env=no_llm).stdout
        assert [line.strip().split(":")[0] for line in dry_no_llm.splitlines() if line.startswith("  ")] == RECURATED[:1]
        assert "action_filtered: code version" in dry.stdout

        run = haic("recurate", env=env)
        assert run.returncode == 0, run.stderr[-3000:]
        with dagster_instance(home) as instance:
            after = materializations(instance)
        assert {n: after[n] - before[n] for n in after} == {**{n: 0 for n in UPSTREAM}, **{n: 1 for n in RECURATED}}
        assert server.total_requests == requests_before  # the caption came from the cache
        assert "Nothing is stale." in haic("recurate", "--dry-run", env=env).stdout

    book = ledger(home)
    final = book[book["stage"] == "action_filtered"]
    assert final["verdict"].tolist() == ["kept"]
    assert json.loads(final["detail"].iloc[0])["min_l1"] == 0.1  # the new threshold is on record


def test_the_scheduled_pass_requests_exactly_the_assets_downstream_of_new_data(tmp_path, monkeypatch):
    """The assets' automation conditions, evaluated as the daemon's ticks evaluate them, at chosen times:
    stale partitions wait for the pass (settings.yaml platform.recuration_cron, Mondays 03:00); the
    pass requests exactly them, once; without an LLM backend, never the caption stages."""
    home = tmp_path / "home"
    defs = run_sample(home, monkeypatch)
    with dagster_instance(home) as instance:

        def tick(at, cursor=None):
            return evaluate_automation_conditions(defs, instance, evaluation_time=at, cursor=cursor)

        quiet = tick(TICK - timedelta(hours=1))
        assert quiet.total_requested == 0
        assert run_partition(defs, instance, SAMPLE_PARTITION, selection=[AssetKey("raw_metadata")]).success
        before_pass = tick(TICK - timedelta(minutes=30), quiet.cursor)
        assert before_pass.total_requested == 0  # stale, but the pass is not due yet
        at_pass = tick(TICK + timedelta(seconds=30), before_pass.cursor)
        requested = {k.to_user_string(): sorted(at_pass.get_requested_partitions(k))
                     for k in defs.resolve_asset_graph().get_all_asset_keys() if at_pass.get_num_requested(k)}
        assert requested == {name: [SAMPLE_PARTITION] for name in UPSTREAM[1:] + RECURATED[:1]}
        assert tick(TICK + timedelta(minutes=1), at_pass.cursor).total_requested == 0  # once per pass
