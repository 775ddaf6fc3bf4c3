"""Reasons as a code plus values: every decision names its reason with a code, drops group by code
with their numbers, and the contact sheets show the cases nearest each threshold."""

from __future__ import annotations

import pandas as pd
import pytest
from dagster import DagsterEventType

from haic_core.accumulation.presence import presence_decision
from haic_core.decisions import dropped, error, kept, reason_code, teaching_examples
from haic_core.haicbench.dataset_statistics import funnel_bars, funnel_labels
from haic_core.ledger import LEDGER_COLUMNS, ledger_rows, verdict_summary
from haic_cli.progress import RunProgress
from haic_platform.ledger import decision_metadata


@pytest.mark.parametrize("metric, value, threshold, code", [
    ("short_side_px", 144.0, 240.0, "low_resolution"),
    ("has_verb", 0.0, 1.0, "no_verb"),
    ("clip_length_s", 1.2, 5.0, "too_short"),
    ("clip_length_s", 21.0, 20.0, "too_long"),
    ("people_count", 0.0, 1.0, "too_few_people"),
    ("people_count", 7.0, 5.0, "too_many_people"),
    ("box_coverage", 0.085, 0.1, "low_box_coverage"),
    ("keypoint_l1", 0.04, 0.085, "static_keypoints"),
    ("affine_residual", 0.001, 0.0016, "camera_motion"),
    ("keypoint_l1", None, 0.085, "unmeasured_keypoint_l1"),
])
def test_a_measured_drop_is_coded_by_its_metric_and_side_of_the_threshold(metric, value, threshold, code):
    assert dropped("v:1", "whatever the words", metric=metric, value=value, threshold=threshold).code == code


@pytest.mark.parametrize("reason, code", [
    ("duplicate id (row 7)", "duplicate_id"),
    ("missing id", "missing_id"),
    ("local uri '../../etc/passwd' resolves outside the allowed roots", "local_uri_resolves"),
    ("attributes not first in paragraph 2: first sentence has no appearance words", "attributes_not_first"),
    ("sampling frames: timed out after 20 s", "sampling_frames"),
])
def test_an_unmeasured_reason_is_coded_by_its_leading_words(reason, code):
    assert reason_code("dropped", reason) == code


def test_kept_errors_and_given_codes():
    assert kept("v:1").code == "kept"
    assert error("v:1", "scene detection: crashed").code == "scene_detection"
    assert dropped("v:1", "no tracklet", code="no_tracklet").code == "no_tracklet"
    with pytest.raises(ValueError, match="lower_snake_case"):
        dropped("v:1", "x", code="Not A Code")


def test_the_ledger_keeps_its_columns_and_adds_the_code():
    rows = ledger_rows([dropped("v:1", "low", metric="box_coverage", value=0.05, threshold=0.1)], stage="s",
                       partition="src__a.csv", config_hash="h", code_version="1", run_id="r")
    assert list(rows.columns) == list(LEDGER_COLUMNS)
    assert list(LEDGER_COLUMNS)[:9] == ["item_id", "parent_id", "item_kind", "source", "partition", "stage", "verdict",
                                        "reason", "reason_code"]
    assert rows.loc[0, "reason_code"] == "low_box_coverage"


def presence(clip_id: str, coverages: list[float]):
    """A clip whose 16 frames each show one person box covering `coverages[i]` of a 100x100 frame."""
    boxes = [[[0.0, 0.0, 100.0, 100.0 * c]] for c in coverages]
    return presence_decision(clip_id, boxes, [[0.9]] * len(coverages), 100, 100)


def test_drops_group_by_code_and_each_group_shows_the_item_nearest_the_threshold():
    decisions = [presence("far", [0.01] * 16), presence("near", [0.2] * 15 + [0.09]), presence("ok", [0.3] * 16),
                 dropped("v:2", "scene 1.20 s < 5.0 s", item_kind="clip", metric="clip_length_s", value=1.2,
                         threshold=5.0)]
    groups = verdict_summary(decisions)["by_reason"]
    assert [(g.code, g.items, g.nearest.item_id) for g in groups] == [("low_box_coverage", 2, "near"),
                                                                      ("too_short", 1, "v:2")]
    # The reason already carries the value: it is not repeated.
    assert groups[0].line() == ("low_box_coverage x2 (nearest: near low_box_coverage: box_coverage=0.0900 < 0.1 "
                                "in 1/16 sampled frames)")
    assert groups[1].line() == "too_short x1 (nearest: v:2 too_short: scene 1.20 s < 5.0 s [clip_length_s=1.2, threshold 5])"
    metadata, line = decision_metadata(decisions, {})
    assert [r.data["reason_code"] for r in metadata["dropped_by_reason"].records] == ["low_box_coverage", "too_short"]
    assert line.startswith("1 kept, 3 dropped, 0 error; top reasons: low_box_coverage x2 (nearest: near ")


def test_contact_sheets_go_to_the_kept_and_to_the_drops_nearest_each_threshold():
    decisions = [presence("empty", [0.0] * 16), presence("far", [0.01] * 16), presence("near", [0.2] * 15 + [0.09]),
                 presence("ok1", [0.3] * 16), presence("ok2", [0.11] * 16), error("bad", "sampling frames: crashed"),
                 dropped("crowd", "people_count=7 > 5", metric="people_count", value=7.0, threshold=5.0)]
    assert [d.item_id for d in teaching_examples(decisions, 1)] == ["ok2", "near", "crowd"]
    assert [d.item_id for d in teaching_examples(decisions, 2)] == ["ok2", "ok1", "near", "far", "crowd"]
    assert teaching_examples(decisions, 0) == []


def test_the_split_counts_qa_and_videos_apart():
    decisions = [kept("q1", item_kind="qa"), kept("q2", item_kind="qa"), dropped("q3", "quota filled", item_kind="qa"),
                 kept("v1", item_kind="video"), dropped("v2", "video not chosen", item_kind="video")]
    metadata, line = decision_metadata(decisions, {})
    assert (metadata["kept_qa"], metadata["yield_pct_qa"], metadata["kept_video"], metadata["yield_pct_video"]) == (
        2, 66.67, 1, 50.0)
    assert "kept" not in metadata and "yield_pct" not in metadata
    assert line.startswith("2 kept, 1 dropped, 0 error (qa); 1 kept, 1 dropped, 0 error (video)")


def test_the_funnel_plot_draws_no_bar_for_a_stage_that_kept_nothing_and_labels_drops_by_code():
    assert funnel_bars([120, 14, 0, 0]) == [(0, 120), (1, 14)]
    drops = pd.DataFrame({"partition": ["p"] * 5 + ["q"], "stage": ["clips"] + ["human_presence"] * 4 + ["clips"],
                          "reason_code": ["too_short", "low_box_coverage", "too_few_people", "too_many_people",
                                          "a_code", "too_long"],
                          "n_dropped": [7, 12, 3, 1, 1, 9]})
    assert funnel_labels(drops, "p", ["videos", "clips", "human_presence"]) == [
        "", "too_short 7", "low_box_coverage 12, too_few_people 3, a_code 1, …"]


class Entry:
    """A run's event as the event log returns it (step events, an engine event with metadata, a
    materialization with metadata), built from Dagster's own event data classes."""

    def __init__(self, step, timestamp, event_type=None, data=None, message=""):
        self.step_key, self.timestamp, self.user_message = step, timestamp, message
        self.dagster_event = (type("E", (), {"event_type": event_type, "event_specific_data": data})()
                              if event_type else None)


def progress_event(step, timestamp, report):
    from dagster import MetadataValue
    from dagster._core.events import EngineEventData

    from haic_platform.progress import PROGRESS_KEY

    return Entry(step, timestamp, DagsterEventType.ENGINE_EVENT,
                 EngineEventData(metadata={PROGRESS_KEY: MetadataValue.json(report.as_metadata())}), report.line())


def materialized(step, timestamp, partition, **counts):
    from dagster import AssetMaterialization
    from dagster._core.events import StepMaterializationData

    return Entry(step, timestamp, DagsterEventType.ASSET_MATERIALIZATION, StepMaterializationData(
        AssetMaterialization(asset_key=step, partition=partition, metadata=counts)))


def test_run_progress_reads_stages_items_and_summaries_from_the_run_events():
    from haic_platform.progress import ProgressReport

    progress = RunProgress(total_steps=2)
    progress.see(Entry("videos", 0.0, DagsterEventType.STEP_START), plain=False)
    progress.see(progress_event("videos", 3.0, ProgressReport("videos", "src__a.csv", "fetch and probe", 3, 8, 1.0,
                                                              5.0)), plain=False)
    assert progress.now() == "videos · fetch and probe 3/8"
    progress.see(materialized("videos", 9.0, "src__a.csv", items=8, kept=8, dropped=0, errors=0), plain=False)
    progress.see(Entry("videos", 9.5, DagsterEventType.STEP_SUCCESS), plain=False)
    assert progress.now() == "" and progress.finished == ["videos"]
    assert progress.lines == ["    videos [src__a.csv]: 8 kept, 0 dropped, 0 error", "[1/2] videos done (9.5 s)"]
    plain = RunProgress(total_steps=2)
    plain.see(Entry("clips", 0.0, DagsterEventType.STEP_START), plain=True)
    plain.see(progress_event("clips", 1.0, ProgressReport("clips", "src__a.csv", "scene detection", 1, 2, 1.0, None)),
              plain=True)
    plain.see(materialized("haicbench_split", 2.0, "all", kept_qa=2, dropped_qa=1, errors_qa=0, kept_video=1,
                           dropped_video=1, errors_video=0), plain=True)
    plain.see(Entry("clips", 2.5, message="a warning of the stage"), plain=True)
    assert plain.lines == ["[1/2] clips started", "    clips [src__a.csv] scene detection: 1/2 (50 %), 1.00/s",
                           "    haicbench_split [all]: 2 kept, 1 dropped, 0 error (qa); 1 kept, 1 dropped, 0 error "
                           "(video)"]


def test_haic_why_reads_a_ledger_written_before_reason_codes(tmp_path, monkeypatch, capsys):
    from haic_cli import main as cli

    old = ledger_rows([dropped("webvid:1", "low resolution 10x10", metric="short_side_px", value=10.0, threshold=240.0)],
                      stage="metadata_filtered", partition="webvid__a.csv", config_hash="h", code_version="1",
                      run_id="r").drop(columns=["reason_code"])
    folder = tmp_path / "home" / "tables" / "ledger" / "metadata_filtered"
    folder.mkdir(parents=True)
    old.to_parquet(folder / "webvid__a.csv.parquet")
    monkeypatch.setenv("HAIC_HOME", str(tmp_path / "home"))
    assert cli.main(["why", "webvid:1"]) == 0
    assert capsys.readouterr().out.splitlines()[1].split() == [
        "metadata_filtered", "video", "webvid:1", "DROPPED", "low", "resolution", "10x10", "[short_side_px=10,",
        "threshold", "240]"]


def test_kept_items_get_their_own_number_of_contact_sheets():
    from haic_assets.accumulation.action_filtered import ActionFilterConfig
    from haic_assets.accumulation.human_presence import HumanPresenceConfig

    decisions = [kept(f"ok{i}", "fine", metric="box_coverage", value=0.1 + i / 100, threshold=0.1) for i in range(10)]
    decisions += [dropped(f"low{i}", "low", metric="box_coverage", value=0.05 + i / 100, threshold=0.1)
                  for i in range(3)]
    chosen = [d.item_id for d in teaching_examples(decisions, 2, kept=8)]
    assert chosen == [f"ok{i}" for i in range(8)] + ["low2", "low1"]
    # The stages' defaults: 8 kept clips (enough to see what a filter keeps), 2 drops per reason code.
    for config in (HumanPresenceConfig(), ActionFilterConfig()):
        assert (config.kept_contact_sheets, config.contact_sheets) == (8, 2)
