"""HAICTrain export: LLaVA-Video conversation records, the dataset card and the release files."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest

from haic_core.haic_train.export import (
    DEFAULT_QUESTION,
    RELEASE_COLUMNS,
    CaptionedClip,
    captioned_clips,
    clip_file_name,
    count_by_reason_class,
    dataset_card_markdown,
    release_files,
    release_table,
    to_conversation_records,
)

ONE = ("There is 1 subject in the video. The subject is a young woman with long blonde hair, wearing a red top. "
       "She throws three balls into the air and catches them one after another.")  # fmt: skip
TWO = ("There are 2 subjects in the video.\n\nThe first subject is a man with short black hair, wearing a grey "
       "T-shirt. He grips the other man's hand and pushes it down.\n\nThe second subject is a man with curly "
       "hair, wearing a white tank top. He pulls back and then shakes his head.")  # fmt: skip

CLIPS = [
    CaptionedClip("webvid-22/clip-001", "s3://haic/clips/webvid-22/clip-001.mp4", TWO, "Two men arm wrestling.",
                  {"model": "gemini-2.5-pro", "prompt_version": "caption_recaption/1+abc", "run_id": "r1"}),
    CaptionedClip("webvid-11/clip-000", "s3://haic/clips/webvid-11/clip-000.mp4", ONE, "Girl juggling in park",
                  {"model": "gemini-2.5-pro", "prompt_version": "caption_recaption/1+abc", "run_id": "r1"}),
]  # fmt: skip


def test_records_follow_the_llava_video_conversation_layout() -> None:
    records = to_conversation_records(CLIPS)
    assert [r["id"] for r in records] == ["webvid-11/clip-000", "webvid-22/clip-001"]  # sorted, deterministic
    first = records[0]
    assert first["video"] == f"videos/{clip_file_name('webvid-11/clip-000')}"  # relative to the export root
    assert first["conversations"] == [
        {"from": "human", "value": f"<image>\n{DEFAULT_QUESTION}"},  # the one token LLaVA-NeXT expands
        {"from": "gpt", "value": ONE},
    ]
    assert first["original_description"] == "Girl juggling in park"
    assert first["provenance"]["model"] == "gemini-2.5-pro"
    json.dumps(records)  # serialisable as is


def test_records_without_provenance_have_only_the_llava_keys() -> None:
    records = to_conversation_records(CLIPS, with_provenance=False, question="What happens?")
    assert set(records[0]) == {"id", "video", "conversations"}
    assert records[0]["conversations"][0]["value"] == "<image>\nWhat happens?"


def test_duplicate_ids_and_empty_captions_are_refused() -> None:
    with pytest.raises(ValueError, match="duplicate clip ids"):
        to_conversation_records([CLIPS[0], CLIPS[0]])
    with pytest.raises(ValueError, match="empty caption"):
        to_conversation_records([CaptionedClip("c", "u", "   ")])


def test_dataset_card_counts_records_subjects_provenance_and_drops() -> None:
    card = dataset_card_markdown(
        CLIPS,
        dropped_by_reason={"count mismatch: declares 2 subjects, has 3 paragraphs": 4, "refusal: 'I cannot'": 1},
        config={"min_words": 40},
    )
    assert card.startswith("# HAICTrain")
    assert "| records | 2 |" in card
    assert "| unique videos | 2 |" in card
    assert "| 1 | 1 |" in card and "| 2 | 1 |" in card  # one caption with 1 subject, one with 2
    assert "| gemini-2.5-pro | 2 |" in card
    assert "| count mismatch: declares 2 subjects, has 3 paragraphs | 4 |" in card
    assert "| min_words | `40` |" in card


def test_dataset_card_of_nothing_still_renders() -> None:
    card = dataset_card_markdown([])
    assert "| records | 0 |" in card


def test_release_rows_point_at_the_media_store_and_export_as_five_files() -> None:
    judged = pd.DataFrame({"clip_id": ["c1"], "clip_key": ["clips/c1.mp4"], "caption": [ONE],
                           "description": ["Girl juggling in park"], "video_id": ["v1"], "provider": ["gemini"],
                           "model": ["gemini-2.5-pro"], "prompt_version": ["p/1"], "cost_usd": [0.0]})
    release = release_table(judged, "s3://haic/media")
    assert list(release.columns) == RELEASE_COLUMNS and release["clip_uri"].tolist() == ["s3://haic/media/clips/c1.mp4"]
    clips = captioned_clips(release, {"partition": "src__a.csv", "run_id": "r1"})
    assert list(clips[0].provenance) == ["video_id", "model", "prompt_version", "partition", "run_id"]
    files = release_files(release, clips, "# HAICTrain\n")
    assert sorted(files) == ["README.md", "clips_manifest.jsonl", "haic_train.jsonl", "haic_train.parquet",
                             "llava_video_conversations.json"]
    (manifest,) = [json.loads(line) for line in files["clips_manifest.jsonl"].decode().splitlines()]
    assert manifest == {"id": "c1", "video": "videos/c1.mp4", "uri": "s3://haic/media/clips/c1.mp4"}
    assert [json.loads(line)["clip_uri"] for line in files["haic_train.jsonl"].decode().splitlines()] == [
        "s3://haic/media/clips/c1.mp4"]
    assert pd.read_parquet(io.BytesIO(files["haic_train.parquet"])).equals(release.assign(video=["videos/c1.mp4"]))
    assert files["README.md"].decode().split("---\n")[2].lstrip().startswith("# HAICTrain")  # after the datasets header
    assert json.loads(files["llava_video_conversations.json"])[0]["provenance"]["run_id"] == "r1"


def test_drops_are_counted_by_reason_class() -> None:
    assert count_by_reason_class(["too short: 3 words < 40", "too short: 5 words < 40", "refusal"]) == {
        "too short: # words < #": 2, "refusal": 1}


def test_clip_file_names_have_no_colons_or_slashes_and_never_collide() -> None:
    names = {clip_id: clip_file_name(clip_id) for clip_id in
             ("webvid_sample:1001-0", "webvid_sample/1001-0", "webvid_sample_1001-0", "plain-clip_1.2")}
    assert all(":" not in n and "/" not in n and n.endswith(".mp4") for n in names.values())
    assert len(set(names.values())) == len(names)
    assert names["plain-clip_1.2"] == "plain-clip_1.2.mp4"  # a safe id is kept as it is
