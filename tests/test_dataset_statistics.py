"""Dataset statistics as DuckDB queries over the ledger/clips/captions/qa views, and their plots."""

from __future__ import annotations

import io

import duckdb
import pandas as pd
import pytest
from PIL import Image

from haic_core.haicbench.dataset_statistics import (
    caption_length_summary,
    caption_lengths,
    clip_duration_histogram,
    compute_dataset_statistics,
    funnel_by_source,
    plot_caption_lengths,
    plot_clip_durations,
    plot_funnel,
    plot_qa_per_category,
    qa_per_category,
    register_views,
    render_word_cloud,
    word_frequencies,
)


def ledger_rows(partition, n_videos, n_meta_kept, n_clips, n_motion_kept):
    rows = [dict(item_id=f"{partition}_v{i}", parent_id=None, item_kind="video", partition=partition,
                 stage="metadata_filter", verdict="kept" if i < n_meta_kept else "dropped", reason="r",
                 metric=None, value=None, threshold=None) for i in range(n_videos)]
    rows += [dict(item_id=f"{partition}_c{i}", parent_id=f"{partition}_v0", item_kind="clip", partition=partition,
                  stage="motion_filter", verdict="kept" if i < n_motion_kept else "dropped", reason="r",
                  metric="motion_l1", value=0.1, threshold=0.085) for i in range(n_clips)]
    return rows


@pytest.fixture()
def con():
    connection = duckdb.connect()
    register_views(
        connection,
        ledger=pd.DataFrame(ledger_rows("webvid", 1000, 400, 50, 12) + ledger_rows("omega", 500, 100, 20, 2)),
        clips=pd.DataFrame({"clip_id": ["a", "b", "c", "d"], "video_id": ["v", "v", "w", "x"],
                            "start_s": [0.0, 5.0, 0.0, 2.0], "end_s": [5.5, 19.9, 7.0, 14.0],
                            "duration_s": [5.5, 14.9, None, 12.0]}),
        captions=pd.DataFrame({"clip_id": ["a", "b"], "caption": [
            "There are 2 subjects. The man in a red shirt jumps, then jumps again.",
            "There is 1 subject. A woman waves to the man."]}),
        qa=pd.DataFrame({"qa_id": ["1", "2", "3"], "clip_id": ["a", "a", "b"], "category": ["count", "count", "attribute"]}),
    )
    yield connection
    connection.close()


def test_funnel_per_source_and_stage_with_yield(con):
    funnel = funnel_by_source(con).set_index(["partition", "stage"])
    webvid = funnel.loc[("webvid", "motion_filter")]
    assert (webvid["n_in"], webvid["n_kept"], webvid["n_dropped"]) == (50, 12, 38)
    assert webvid["yield_pct_of_source"] == pytest.approx(1.2)  # 12 clips from 1000 videos
    assert (webvid["paper_yield_low_pct"], webvid["paper_yield_high_pct"]) == (0.31, 1.3)
    assert funnel.loc[("omega", "motion_filter"), "yield_pct_of_source"] == pytest.approx(0.4)
    assert funnel.loc[("webvid", "metadata_filter"), "stage_keep_pct"] == pytest.approx(40.0)
    assert list(funnel_by_source(con)["stage"][:2]) == ["metadata_filter", "motion_filter"]  # pipeline order


def test_clip_duration_bins_use_duration_or_end_minus_start(con):
    histogram = clip_duration_histogram(con, bin_width_s=5)
    assert histogram[["bin_start_s", "n_clips"]].values.tolist() == [[5.0, 2], [10.0, 2]]


def test_caption_word_counts(con):
    assert caption_lengths(con).set_index("clip_id")["n_words"].to_dict() == {"a": 14, "b": 10}
    summary = caption_length_summary(con, long_caption_words=11)
    assert summary["n_captions"] == 2 and summary["max_words"] == 14 and summary["pct_over_long"] == 50.0


def test_qa_per_category(con):
    assert qa_per_category(con)[["category", "n_qa"]].values.tolist() == [["count", 2], ["attribute", 1]]


def test_word_frequencies_drop_stop_words_and_format_words(con):
    frequencies = word_frequencies(con).set_index("word")["n"].to_dict()
    assert frequencies["jumps"] == 2 and frequencies["man"] == 2
    assert not {"the", "there", "subjects", "a", "to", "then"} & set(frequencies)


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000
    return Image.open(io.BytesIO(data)).size


def test_plots_render_pngs_of_the_requested_size(con):
    stats = compute_dataset_statistics(con)
    assert png_size(plot_clip_durations(stats.clip_durations, 640, 400)) == (640, 400)
    assert png_size(plot_caption_lengths(stats.caption_lengths)) == (800, 500)
    assert png_size(plot_qa_per_category(stats.qa_per_category)) == (800, 500)
    assert png_size(plot_funnel(stats.funnel, "webvid")) == (800, 500)
    assert png_size(render_word_cloud(stats.word_frequencies, 600, 300)) == (600, 300)


def test_word_cloud_needs_words():
    with pytest.raises(ValueError, match="at least one word"):
        render_word_cloud({})
