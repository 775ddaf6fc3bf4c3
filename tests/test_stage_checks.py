"""The asset checks of the deciding stages, evaluated from a partition's decisions and table."""

from __future__ import annotations

from haic_core.decisions import dropped, error, kept
from haic_assets.platform.settings import PlatformSettings
from haic_assets.platform.stage_checks import (CAPTION_PASS_RATE, ERROR_RATE, REQUIRED_COLUMNS, YIELD_BAND,
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
