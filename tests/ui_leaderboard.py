"""The UI shows the leaderboard asset with the paper's reference rows: eval_leaderboard is launched
through `dagster dev`'s GraphQL API (what the UI's Materialize button sends) and its materialization,
as the asset page reads it, holds the table in the paper's layout with the reference rows marked.
Called by the UI test (tests/test_ui_browser.py), which already runs `dagster dev`."""

from __future__ import annotations

from tests.dagster_dev import LAUNCH_RUN, LOCATION, REPOSITORY, run_errors

LATEST_MATERIALIZATION = """
{ assetOrError(assetKey: {path: ["eval_leaderboard"]}) { ... on Asset {
    assetMaterializations(limit: 1) { runId metadataEntries { label ... on MarkdownMetadataEntry { mdStr } } } } } }"""


def check_leaderboard_shows_the_reference_rows(graphql, wait_for_run) -> str:
    """Launch eval_leaderboard_job (no model evaluated yet: only the paper's rows), check what the asset page
    shows; returns the run id. `graphql(query, variables)` and `wait_for_run(run_id) -> status` talk to the server."""
    params = {"selector": {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY,
                           "jobName": "eval_leaderboard_job"}, "runConfigData": {}}
    launched = graphql(LAUNCH_RUN, {"params": params})["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["runId"]
    status = wait_for_run(run_id)
    assert status == "SUCCESS", f"eval_leaderboard_job run {run_id} ended {status}:\n{run_errors(graphql, run_id)}"
    (materialization,) = graphql(LATEST_MATERIALIZATION)["assetOrError"]["assetMaterializations"]
    assert materialization["runId"] == run_id
    (table,) = [e["mdStr"] for e in materialization["metadataEntries"] if e["label"] == "leaderboard"]
    header = next(line for line in table.splitlines() if "Avg." in line)
    assert [c.strip() for c in header.strip("|").split("|")][-7:] == [
        "Avg.", "Action Details", "Action Sequence", "Interaction", "Count", "Attribute", "Errors %"]
    reference = [line for line in table.splitlines() if "paper (reference)" in line]
    assert len(reference) == 17  # Tables 2 and 3 of the paper, marked as reference
    assert any("LLaVA-Video-ActionPro-7B" in line for line in reference)
    return run_id
