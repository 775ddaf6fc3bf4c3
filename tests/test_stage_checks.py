"""The asset checks of the deciding stages, evaluated from a partition's decisions and table."""

from __future__ import annotations

from haic_core.decisions import dropped, error, kept
from haic_platform.settings import PlatformSettings
from haic_platform.stage_checks import (CAPTION_PASS_RATE, ERROR_RATE, REQUIRED_COLUMNS, YIELD_BAND,
                                               check_results, decision_facts, stage_check_specs)


def test_the_checks_a_stage_asks_for_are_declared_next_to_its_asset():
    names = [spec.name for spec in stage_check_specs("action_filtered", ["clip_id"], [YIELD_BAND])]
    assert names == [ERROR_RATE, "one_ledger_row_per_item", REQUIRED_COLUMNS, YIELD_BAND]
    assert [spec.name for spec in stage_check_specs("clips")] == [ERROR_RATE, "one_ledger_row_per_item"]


def test_yield_inside_the_papers_band_passes_and_outside_warns():
    platform = PlatformSettings()
    inside = {"a": decision_facts([kept("c1"), dropped("c2", "static")], ["clip_id"], raw_rows=200)}
    outside = {"a": decision_facts([kept("c1"), kept("c2")], ["clip_id"], raw_rows=8)}
    [ok] = check_results("action_filtered", inside, platform, {YIELD_BAND})
    [warn] = check_results("action_filtered", outside, platform, {YIELD_BAND})
    assert (ok.passed, ok.description) == (True, "kept 1 of 200 raw_metadata rows = 0.50 %, band 0.31-1.3 %")
    assert (warn.passed, warn.severity.value, warn.description) == (
        False, "WARN", "kept 2 of 8 raw_metadata rows = 25.00 %, band 0.31-1.3 %")


def test_a_missing_column_fails_and_the_caption_pass_rate_is_over_judged_captions():
    platform = PlatformSettings(min_caption_format_pass_rate=0.5)
    facts = {"a": decision_facts([kept("c1"), dropped("c2", "count mismatch"), dropped("c3", "too short"),
                                  error("c4", "judge timeout")], ["clip_id", "caption"])}
    columns, rate = check_results("caption_judgement", facts, platform, {REQUIRED_COLUMNS, CAPTION_PASS_RATE},
                                  required_columns=["clip_id", "caption", "verdict"])
    assert (columns.passed, columns.metadata["missing"].value) == (False, "verdict")
    assert (rate.passed, rate.description) == (False, "1 of 3 captions pass = 33.3 %, minimum 50.0 %")


def test_one_row_per_item_names_the_items_that_repeat():
    platform = PlatformSettings()
    twice = {"a": decision_facts([kept("v1"), dropped("v1", "duplicate"), kept("v2")]),
             "b": decision_facts([kept("v3"), error("v3", "again"), error("v3", "and again")])}
    [check] = check_results("raw_metadata", twice, platform, {"one_ledger_row_per_item"})
    assert (check.passed, check.metadata["repeated_items"].value, check.metadata["repeated_ids"].value) == (
        False, 3, "v1, v3")


def test_the_demo_samples_duplicate_row_is_an_item_of_its_own_and_the_check_passes(tmp_path, monkeypatch):
    """Issue 23 item 8: the sample's duplicate-id row is `<source>:<shard>#row7`, under the video it repeats,
    so `haic why webvid_sample:1001` tells one story and one_ledger_row_per_item passes on raw_metadata."""
    from dagster import AssetKey

    from tests.helpers import SAMPLE_PARTITION, dagster_instance, land_sample, ledger, run_partition, without_llm
    from haic_assets.definitions import build_definitions

    home = tmp_path / "home"
    monkeypatch.setenv("HAIC_HOME", str(home))
    without_llm(monkeypatch)
    land_sample(home)
    with dagster_instance(home) as instance:
        result = run_partition(build_definitions(), instance, SAMPLE_PARTITION, selection=[AssetKey("raw_metadata")])
        checks = {e.asset_check_evaluation_data.check_name: e.asset_check_evaluation_data.passed
                  for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"}
    assert checks["one_ledger_row_per_item"] is True
    rows = ledger(home).query("stage == 'raw_metadata'").set_index("item_id")
    assert rows.loc["webvid_sample:1001", "verdict"] == "kept"
    duplicate = rows.loc["webvid_sample:results_sample.csv#row7"]
    assert (duplicate["verdict"], duplicate["parent_id"], duplicate["reason_code"]) == (
        "dropped", "webvid_sample:1001", "duplicate_id")
