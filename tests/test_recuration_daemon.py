"""Re-curation as the real daemon runs it, seen through the UI's own GraphQL API: after a threshold
change on a materialized partition, the automation view (the assets' condition evaluations) requests
exactly the stale assets for that partition, says why, and the daemon materializes them.

The threshold is changed while the deployment is down (the code location loads with it); the
scheduled pass runs every minute here (settings.yaml platform.recuration_cron), so the test waits on
the daemon's tick, not on a wall clock.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from dagster import AssetKey, AssetRecordsFilter, DagsterInstance
from dagster._core.instance.ref import InstanceRef

from haic_assets.platform.automation import RECURATION_TAG
from haic_resources.storage.home import prepare_dagster_home
from tests.dagster_dev import dagster_dev
from tests.helpers import REPO_ROOT, SAMPLE_PARTITION, land_sample
from tests.llm_servers import FakeGeminiServer
from tests.test_captions_pipeline import GOOD_CAPTION, SECRET
from tests.timing import limit

pytestmark = [pytest.mark.services, pytest.mark.slow, pytest.mark.timeout(1200)]

UPSTREAM = ["raw_metadata", "metadata_filtered", "videos", "clips", "human_presence", "person_detections",
            "pose_tracks"]
STALE = ["action_filtered", "captions", "caption_judgement", "haic_train"]
EVERY_MINUTE = 'platform:\n  recuration_cron: "* * * * *"\n'

EVALUATIONS = """
query($key: AssetKeyInput!) { assetConditionEvaluationRecordsOrError(assetKey: $key, limit: 100) {
  __typename ... on AssetConditionEvaluationRecords { records {
    evaluationId numRequested rootUniqueId runIds
    evaluationNodes { uniqueId userLabel expandedLabel numTrue } } } } }"""

TRUE_PARTITIONS = """
query($key: AssetKeyInput!, $id: ID!, $node: String) {
  truePartitionsForAutomationConditionEvaluationNode(assetKey: $key, evaluationId: $id, nodeUniqueId: $node) }"""

RUNS = """
query($tags: [ExecutionTag!]) { runsOrError(filter: {tags: $tags}) { ... on Runs { results {
  runId status assetSelection { path } tags { key value } } } } }"""


def haic(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "haic_cli", *args], env=dict(os.environ), cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=limit(900))


def materializations(instance, names) -> dict[str, int]:
    return {name: len(instance.fetch_materializations(
        AssetRecordsFilter(asset_key=AssetKey(name), asset_partitions=[SAMPLE_PARTITION]), limit=100).records)
        for name in names}


def requested(dev, name: str) -> list[dict]:
    """The evaluations of `name`'s automation condition that requested something."""
    found = dev.graphql(EVALUATIONS, {"key": {"path": [name]}})["assetConditionEvaluationRecordsOrError"]
    assert found["__typename"] == "AssetConditionEvaluationRecords", found
    return [r for r in found["records"] if r["numRequested"]]


def true_partitions(dev, name: str, evaluation_id: str, node: str) -> list[str]:
    return dev.graphql(TRUE_PARTITIONS, {"key": {"path": [name]}, "id": evaluation_id, "node": node})[
        "truePartitionsForAutomationConditionEvaluationNode"]


def test_the_automation_view_lists_exactly_the_stale_assets_and_the_daemon_materializes_them(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("HAIC_HOME", str(home))
    monkeypatch.delenv("HAIC_SETTINGS", raising=False)
    monkeypatch.delenv("HAIC_PROFILE", raising=False)
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "HAIC_LLM_PROVIDER"):
        monkeypatch.delenv(name, raising=False)
    with FakeGeminiServer(GOOD_CAPTION) as server:
        monkeypatch.setenv("GEMINI_API_KEY", SECRET)
        monkeypatch.setenv("GEMINI_BASE_URL", server.base_url)
        land_sample(home)
        (home / "settings.yaml").write_text(EVERY_MINUTE)
        first = haic("run", SAMPLE_PARTITION)
        assert first.returncode == 0, first.stderr[-3000:]
        assert "Nothing is stale." in haic("recurate", "--dry-run").stdout
        # The threshold change: action_filtered's code version changes, and what is made from it is stale.
        (home / "settings.yaml").write_text(EVERY_MINUTE + "action_filtered:\n  motion_l1_min: 0.1\n")
        dry = haic("recurate", "--dry-run")
        assert [line.strip().split(":")[0] for line in dry.stdout.splitlines() if line.startswith("  ")] == STALE
        dagster_home = prepare_dagster_home()
        with DagsterInstance.from_ref(InstanceRef.from_dir(str(dagster_home))) as instance:
            before = materializations(instance, UPSTREAM + STALE)
        assert set(before.values()) == {1}

        with dagster_dev(dagster_home, tmp_path / "dagster_dev.log") as dev:
            tags = [{"key": RECURATION_TAG, "value": "true"}]
            runs = dev.wait_until(lambda: dev.graphql(RUNS, {"tags": tags})["runsOrError"]["results"], 300,
                                  "the recuration_sensor to launch a run", 2.0)
            (run,) = runs
            status = dev.wait_for_run(run["runId"], timeout_s=600)
            assert status == "SUCCESS", dev.run_errors(run["runId"])
            assert sorted(a["path"][0] for a in run["assetSelection"]) == sorted(STALE)
            assert {"key": "dagster/partition", "value": SAMPLE_PARTITION} in run["tags"]

            # The automation view: only the stale assets were requested, in one tick, for this partition.
            shard_assets = UPSTREAM + STALE
            requesting = {name: requested(dev, name) for name in shard_assets}
            assert sorted(n for n, records in requesting.items() if records) == sorted(STALE), requesting
            ticks = {r["evaluationId"] for name in STALE for r in requesting[name]}
            assert len(ticks) == 1, requesting
            for name in STALE:
                (record,) = requesting[name]
                assert record["numRequested"] == 1 and record["runIds"] == [run["runId"]], record
                assert true_partitions(dev, name, record["evaluationId"], record["rootUniqueId"]) == [SAMPLE_PARTITION]
            # Why, per partition, as the Automation tab shows it: action_filtered's own code version
            # changed; each asset after it is stale because an upstream asset is.
            why = {}
            for name in STALE:
                (record,) = requesting[name]
                facts = {node["expandedLabel"][0]: node["uniqueId"] for node in record["evaluationNodes"]
                         if node["expandedLabel"][0] in ("code_version_differs", "upstream_is_stale")}
                why[name] = {fact: true_partitions(dev, name, record["evaluationId"], node)
                             for fact, node in sorted(facts.items())}
            assert why == {
                "action_filtered": {"code_version_differs": [SAMPLE_PARTITION], "upstream_is_stale": []},
                **{name: {"code_version_differs": [], "upstream_is_stale": [SAMPLE_PARTITION]} for name in STALE[1:]}}
        with DagsterInstance.from_ref(InstanceRef.from_dir(str(dagster_home))) as instance:
            after = materializations(instance, UPSTREAM + STALE)
        assert {n: after[n] - before[n] for n in after} == {**{n: 0 for n in UPSTREAM}, **{n: 1 for n in STALE}}
        assert "Nothing is stale." in haic("recurate", "--dry-run").stdout
