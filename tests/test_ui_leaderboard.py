"""The UI shows the leaderboard asset with the paper's reference rows: eval_leaderboard is launched
through `dagster dev`'s GraphQL API (what the UI's Materialize button sends) and its materialization,
as the asset page reads it, holds the table in the paper's layout with the reference rows marked."""

from __future__ import annotations

import pytest

from haic_resources.storage.home import prepare_dagster_home
from tests.dagster_dev import LAUNCH_RUN, LOCATION, REPOSITORY
from tests.dagster_dev import dagster_dev as start_dagster_dev
from tests.helpers import without_llm

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

LATEST_MATERIALIZATION = """
{ assetOrError(assetKey: {path: ["eval_leaderboard"]}) { ... on Asset {
    assetMaterializations(limit: 1) { runId metadataEntries { label ... on MarkdownMetadataEntry { mdStr } } } } } }"""


def test_the_leaderboard_asset_shows_the_papers_reference_rows(tmp_path, monkeypatch):
    without_llm(monkeypatch)
    monkeypatch.setenv("HAIC_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("HAIC_PROFILE", raising=False)
    with start_dagster_dev(prepare_dagster_home(), tmp_path / "dagster_dev.log", 150) as server:
        params = {"selector": {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY,
                               "jobName": "eval_leaderboard_job"}, "runConfigData": {}}
        launched = server.graphql(LAUNCH_RUN, {"params": params})["launchRun"]
        assert launched["__typename"] == "LaunchRunSuccess", launched
        run_id = launched["run"]["runId"]
        assert server.wait_for_run(run_id, 150) == "SUCCESS"
        (materialization,) = server.graphql(LATEST_MATERIALIZATION)["assetOrError"]["assetMaterializations"]
    assert materialization["runId"] == run_id
    (table,) = [e["mdStr"] for e in materialization["metadataEntries"] if e["label"] == "leaderboard"]
    header = next(line for line in table.splitlines() if "Avg." in line)
    assert [c.strip() for c in header.strip("|").split("|")][-6:] == [
        "Avg.", "Action Details", "Action Sequence", "Interaction", "Count", "Attribute"]
    reference = [line for line in table.splitlines() if "paper (reference)" in line]
    assert len(reference) == 17  # Tables 2 and 3 of the paper, marked as reference
    assert any("LLaVA-Video-ActionPro-7B" in line for line in reference)
