"""The Dagster UI, driven by a real Chromium: see every asset, pick the sample partition, launch
the spine from the Materialize button and watch the run succeed.

Starts `dagster dev` (webserver, daemon, code server) on a free port of 127.0.0.1 with a temporary
HAIC_HOME, exactly as `haic ui` does. Screenshots, for a person to look at:

    artifacts/ui/asset_graph.png      the global asset graph with every asset of build_definitions()
    artifacts/ui/partition_view.png   raw_metadata's partitions view on the sample partition
    artifacts/ui/run_success.png      the run page of the run launched from the UI, status Success
    artifacts/ui/leaderboard.png      eval_leaderboard's page after its run (the paper's reference rows)
    artifacts/ui/asset_page.png       human_presence's page: row count, preview, reasons with numbers
    artifacts/ui/contact_sheets.png   its contact sheets (kept, and the drop nearest the threshold)
    artifacts/ui/last_page.png        the page as the test left it (after a failure: where it stopped)

Needs Debian's Chromium at /usr/bin/chromium (scripts/test.sh installs it); Playwright's own
browser download is not used.
"""

from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path
from urllib.parse import quote

import pytest
from dagster import DagsterInstance
from dagster._core.instance.ref import InstanceRef

from haic_assets.platform.partitions import source_shards
from haic_resources.storage.home import prepare_dagster_home
from tests.dagster_dev import dagster_dev as start_dagster_dev, run_errors
from tests.helpers import REPO_ROOT, SAMPLE_PARTITION, land_sample, run_sample, wait_until
from tests.timing import limit

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
SCREENSHOTS = REPO_ROOT / "artifacts" / "ui"
SPINE = ["raw_metadata", "metadata_filtered"]
STARTUP_TIMEOUT_S = 200  # webserver, daemon and code server on a loaded 2-core machine
RUN_TIMEOUT_S = 180  # a loaded 2-core CI machine starts a run process slowly
UI_TIMEOUT_MS = int(limit(20_000))

RUNS_OF_PARTITION = """
query RunsOfPartition($partition: String!) {
  runsOrError(filter: {tags: [{key: "dagster/partition", value: $partition}]}) {
    ... on Runs { results { runId status jobName assetSelection { path } } }
  }
}"""

def graphql(base_url: str, query: str, variables: dict | None = None) -> dict:
    request = urllib.request.Request(f"{base_url}/graphql", data=json.dumps(
        {"query": query, "variables": variables or {}}).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=limit(10)) as response:
        body = json.loads(response.read())
    assert "errors" not in body, body["errors"]
    return body["data"]



@pytest.fixture
def dagster_dev(tmp_path, monkeypatch):
    """`dagster dev` on a temporary HAIC_HOME with the sample shard landed and its partition added.

    The partition is registered before the server starts, so the landing sensor (running by
    default) finds nothing new and launches no run of its own: the only run is the UI's.
    """
    home = tmp_path / "home"
    monkeypatch.setenv("HAIC_HOME", str(home))
    monkeypatch.delenv("HAIC_PROFILE", raising=False)  # the local (SQLite) profile
    land_sample(home)
    dagster_home = prepare_dagster_home()
    with DagsterInstance.from_ref(InstanceRef.from_dir(str(dagster_home))) as instance:
        instance.add_dynamic_partitions(source_shards.name, [SAMPLE_PARTITION])

    with start_dagster_dev(dagster_home, tmp_path / "dagster_dev.log", STARTUP_TIMEOUT_S) as server:
        yield server.base_url, server.log


@pytest.fixture
def page():
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} not found: `apt-get install chromium` (scripts/test.sh does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            # Wide enough for every group of the expanded asset graph: its nodes render only in view.
            page = browser.new_page(viewport={"width": 2400, "height": 1400})
            page.set_default_timeout(UI_TIMEOUT_MS)
            yield page
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / "last_page.png"))  # where a failed test stopped
        finally:
            browser.close()


def open_asset_graph(page, base_url: str) -> None:
    """The global asset graph with every group expanded (several groups start collapsed)."""
    from playwright.sync_api import expect

    page.goto(f"{base_url}/asset-groups")
    expect(page.get_by_role("button", name="Materialize all")).to_be_visible()
    page.get_by_role("button", name="settings").last.click()  # the graph's settings, not the nav's
    expand = page.get_by_role("menuitem", name="Expand all groups")
    expand.or_(page.get_by_role("menuitem", name="Change graph to")).first.wait_for()
    if expand.count():
        expand.click()
    page.keyboard.press("Escape")
    expect(page.get_by_role("menuitem")).to_have_count(0)
    expect(page.locator("[class*=AssetNode_assetName]").first).to_be_visible()


def asset_node(page, name: str):
    # The graph shortens a long name in the middle ("haicbench_c…_leakage").
    shown = re.compile(f"^{re.escape(name)}$|^{re.escape(name[:5])}.*….*{re.escape(name[-5:])}$")
    return page.locator("[class*=AssetNode_assetName]").filter(has_text=shown).locator("visible=true").first


def run_status(base_url: str, run_id: str) -> str:
    return graphql(base_url, 'query($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }',
                   {"id": run_id})["runOrError"]["status"]


def spine_run(base_url: str) -> dict | None:
    runs = graphql(base_url, RUNS_OF_PARTITION, {"partition": SAMPLE_PARTITION})["runsOrError"]["results"]
    return runs[0] if runs else None


@pytest.mark.timeout(480)  # start-up, the graph and a run's worker process: minutes on a loaded 2-core machine
def test_the_spine_is_materialized_from_the_ui(dagster_dev, page):
    from playwright.sync_api import expect

    from haic_assets.definitions import build_definitions

    base_url, log = dagster_dev
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    # dagster.yaml's `nux: enabled: false` is valid in 1.13 and turns the first-visit community
    # dialog off at its source: the UI asks the server, which says no.
    assert graphql(base_url, "{ shouldShowNux }") == {"shouldShowNux": False}

    # The asset graph shows every asset of the code location.
    asset_names = sorted(key.to_user_string() for key in build_definitions().resolve_all_asset_keys())
    assert set(SPINE) <= set(asset_names)
    open_asset_graph(page, base_url)
    for name in asset_names:
        expect(asset_node(page, name), f"asset {name} in the graph").to_be_visible()
    page.screenshot(path=str(SCREENSHOTS / "asset_graph.png"))

    # The asset's partitions view knows the sample partition, not yet materialized.
    page.goto(f"{base_url}/assets/raw_metadata?view=partitions&partition={quote(SAMPLE_PARTITION)}")
    expect(page.get_by_role("heading", name=SAMPLE_PARTITION)
           .or_(page.get_by_text(SAMPLE_PARTITION, exact=True)).locator("visible=true").first).to_be_visible()
    expect(page.get_by_text("Missing (1)")).to_be_visible()
    page.screenshot(path=str(SCREENSHOTS / "partition_view.png"))

    # Select the spine in the graph (click, shift-click), Materialize, pick the partition, launch.
    assert spine_run(base_url) is None, "a run existed before the UI launched one"
    open_asset_graph(page, base_url)
    asset_node(page, SPINE[0]).click()
    asset_node(page, SPINE[1]).click(modifiers=["Shift"])
    page.get_by_role("button", name="Materialize selected (2)").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_text("Launch runs to materialize 2 assets")).to_be_visible()
    dialog.get_by_text("Select a partition or create one").click()
    page.get_by_text(SAMPLE_PARTITION, exact=True).locator("visible=true").first.click()
    # Close the picker by clicking a part of the dialog it cannot cover (it may cover the label).
    expect(dialog.get_by_text("1 partition", exact=True)).to_be_visible()
    dialog.get_by_text("1 partition", exact=True).click()
    dialog.get_by_role("button", name="Launch 1 run").click()

    run = wait_until(lambda: (r := spine_run(base_url)) and r["status"] in ("SUCCESS", "FAILURE", "CANCELED") and r,
                     RUN_TIMEOUT_S, "the run launched from the UI to finish", log)
    assert run["status"] == "SUCCESS", (f"run {run['runId']} ended {run['status']}:\n"
                                        f"{run_errors(lambda q, v=None: graphql(base_url, q, v), run['runId'])}")
    # The error report the assertions above print is empty for a run that succeeded (and the query works).
    assert run_errors(lambda q, v=None: graphql(base_url, q, v), run["runId"]) == ""
    assert run["jobName"] == "__ASSET_JOB"
    assert sorted(a["path"][-1] for a in run["assetSelection"]) == sorted(SPINE)

    page.goto(f"{base_url}/runs/{run['runId']}")
    expect(page.get_by_text("Success", exact=True).locator("visible=true").first).to_be_visible()
    expect(page.get_by_text("RUN_SUCCESS").locator("visible=true").first).to_be_visible()
    page.screenshot(path=str(SCREENSHOTS / "run_success.png"))

    # The leaderboard asset, materialized through the UI's API, shows the paper's reference rows (issue 15).
    from tests.ui_leaderboard import check_leaderboard_shows_the_reference_rows

    check_leaderboard_shows_the_reference_rows(lambda q, v=None: graphql(base_url, q, v), lambda run_id: wait_until(
        lambda: (s := run_status(base_url, run_id)) in ("SUCCESS", "FAILURE", "CANCELED") and s, RUN_TIMEOUT_S,
        "the leaderboard run to finish", log))
    page.goto(f"{base_url}/assets/eval_leaderboard")
    page.screenshot(path=str(SCREENSHOTS / "leaderboard.png"))

@pytest.fixture
def sampled_ui(tmp_path, monkeypatch):
    """`dagster dev` on a HAIC_HOME where the main job has run on the sample partition."""
    home = tmp_path / "home"
    monkeypatch.delenv("HAIC_PROFILE", raising=False)
    run_sample(home, monkeypatch)
    with start_dagster_dev(prepare_dagster_home(), tmp_path / "dagster_dev.log", STARTUP_TIMEOUT_S) as server:
        yield server.base_url


@pytest.mark.timeout(600)
def test_an_asset_page_shows_row_count_preview_reasons_with_numbers_and_contact_sheets(sampled_ui, page):
    from playwright.sync_api import expect

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.goto(f"{sampled_ui}/assets/human_presence")
    # The catalog's row count (dagster/row_count): one clip kept of two.
    row_count = page.get_by_text("Row count", exact=True)
    expect(row_count).to_be_visible(timeout=int(limit(90_000)))
    expect(row_count.locator("xpath=..")).to_have_text(re.compile(r"^Row count\s*1$"))
    # The preview is a table of the kept clips.
    expect(page.get_by_role("cell", name="webvid_sample:1001-6233393577", exact=True)).to_be_visible()
    # The drops grouped by code, with the nearest item's numbers.
    expect(page.get_by_role("cell", name="low_box_coverage", exact=True)).to_be_visible()
    expect(page.get_by_role("cell", name="box_coverage=0.0851 < 0.1 in 7/16 sampled frames", exact=True)).to_be_visible()
    page.screenshot(path=str(SCREENSHOTS / "asset_page.png"), full_page=True)
    # The contact sheets: a thumbnail per kept clip and per drop code, each a real picture.
    page.get_by_text("[Show Markdown]").first.click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_text("webvid_sample:1002-07770f0cba: box_coverage=0.0851 < 0.1 in 7/16 sampled frames",
                              exact=False)).to_be_visible()
    images = dialog.locator("img")
    expect(images).to_have_count(2)
    for i in range(2):
        expect(images.nth(i)).to_be_visible()
        width, height = images.nth(i).evaluate("img => [img.naturalWidth, img.naturalHeight]")
        assert width == 720 and height > 50
    page.screenshot(path=str(SCREENSHOTS / "contact_sheets.png"))
