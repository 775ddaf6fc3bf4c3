"""Issue 12 item 9: a video's work is bounded. The longest video accepted is checked on the
metadata's duration before any fetch (and again on the probe), and the clips stage keeps at most
`max_clips_per_video` scenes per video, recording a drop row with the rank for each one beyond.
Per-clip time limits for presence and pose are in tests/test_presence_isolation.py."""

from __future__ import annotations

import pytest
from dagster import AssetKey

from haic_assets.definitions import build_definitions
from tests.helpers import dagster_instance, ledger, run_partition, without_llm

UPTO_CLIPS = [AssetKey(k) for k in ("raw_metadata", "metadata_filtered", "videos", "clips")]


@pytest.fixture
def home(tmp_path, monkeypatch, media_dir):
    monkeypatch.setenv("HAIC_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HAIC_ALLOWED_MEDIA_ROOTS", str(media_dir / "videos"))
    without_llm(monkeypatch)
    return tmp_path / "home"


@pytest.mark.slow
def test_a_three_hour_row_is_dropped_before_any_fetch_and_a_video_gives_at_most_its_clip_limit(home, media_dir):
    folder = home / "landing" / "long"
    folder.mkdir(parents=True)
    (folder / "source.yaml").write_text("kind: generic\ncolumns: {id: key, description: caption, uri: url, "
                                        f"duration: secs}}\nmedia_root: {media_dir / 'videos'}\n")
    # The 3-hour row names a file that does not exist: fetching it would be an error row, not a drop.
    (folder / "rows.csv").write_text("key,caption,url,secs\n"
                                     "long,A man walks through a city all day,not_there.mp4,10800\n"
                                     "bbb,A rabbit walks and jumps in the forest,moviepy_bbb_0_30_campan_cuts.webm,30\n")
    (home / "settings.yaml").write_text("clips: {max_clips_per_video: 2}\n")
    with dagster_instance(home) as instance:
        assert run_partition(build_definitions(), instance, "long__rows.csv", selection=UPTO_CLIPS).success
    book = ledger(home)
    videos = book[book["stage"] == "videos"]
    assert [(r.item_id, r.verdict, r.reason, r.metric, r.value, r.threshold) for r in videos.itertuples()] == [
        ("long:bbb", "kept", "probed vp8 1280x720 24.00 fps 30.00 s", "short_side_px", 720.0, 240.0),
        ("long:long", "dropped", "video 10800.00 s > 3600 s (by its metadata; not fetched)", "duration_s",
         10800.0, 3600.0)]
    assert not list((home / "media").rglob("not_there*"))
    clips = book[book["stage"] == "clips"].sort_values("value")
    # The golden ledger keeps three scenes of this video; the last one by start time (7.04 s) is over
    # the limit of 2 and its drop row carries its rank.
    rows = {(r.verdict, r.reason, r.metric, r.value, r.threshold) for r in clips.itertuples()}
    assert rows == {("dropped", "scene 3.88 s < 5.0 s", "clip_length_s", 3.875, 5.0),
                    ("kept", "scene 7.29 s within [5.0, 20.0] s", "clip_length_s", 7.291, 5.0),
                    ("kept", "scene 11.79 s within [5.0, 20.0] s", "clip_length_s", 11.792, 5.0),
                    ("dropped", "clip 3 of its video: more than 2 clips of one video", "clips_of_video", 3.0, 2.0)}
    table = __import__("pandas").read_parquet(home / "tables" / "clips" / "long__rows.csv.parquet")
    assert sorted(table["length_s"].round(3)) == [7.291, 11.792]
