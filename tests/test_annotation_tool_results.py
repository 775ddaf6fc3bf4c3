"""What the annotation tool's finished work means for a batch (haic_core/haicbench/annotation_tool.py), on
tasks shaped as Label Studio 1.23 returns them; no server needed (tests/test_annotation_tool.py has one)."""

from __future__ import annotations

import json

import boto3
from moto import mock_aws

from haic_core.haicbench.annotation_tool import (annotations_of, caption_export, captions_finished,
                                                 checking_tasks_due, project_title, review_rows, step_progress, verification_task,
                                                 writing_task)
from haic_core.haicbench.annotations import bench_caption_table, read_caption_export
from haic_core.haicbench.qa_verification import reviews_from_records
from haic_resources.annotation.label_studio import LabelStudioResource
from haic_resources.storage.object_store import LocalObjectStore, S3ObjectStore

CAPTION = ("There is 1 subject in the video.\nThe subject is a man with short black hair in a red shirt and blue "
           "jeans, standing in the middle of a park. He kicks a football up with his right foot, catches it on his "
           "left thigh, lets it drop and kicks it up again five times while he looks down at the ball.")


def annotation(user_id, at, **values):
    result = [{"from_name": k, "to_name": "video", "type": "choices" if k in ("clip_check", "check", "verdict",
                                                                             "corrected_answer") else "textarea",
               "value": {"choices": [v]} if k in ("clip_check", "check", "verdict", "corrected_answer")
               else {"text": [v]}} for k, v in values.items()]
    return {"id": hash((user_id, at)), "completed_by": user_id, "was_cancelled": False, "updated_at": at,
            "result": result}


def task(data, *annotations):
    return {"id": 1, "data": data, "updated_at": "2026-01-01T00:00:00.000000Z", "annotations": list(annotations)}


def test_project_titles_fit_the_tools_50_characters_and_stay_apart():
    assert project_title("omega_batch_1", "caption_checking") == "omega_batch_1: caption checking"
    long_a, long_b = project_title("x" * 60 + "a", "qa_verification"), project_title("x" * 60 + "b", "qa_verification")
    assert len(long_a) == 50 and long_a != long_b and long_a.endswith(": QA verification")


def test_an_annotators_latest_annotation_counts_and_cancelled_ones_do_not():
    t = task({}, annotation(3, "2026-01-01T10:00:00.000000Z", check="approve"),
             annotation(3, "2026-01-02T10:00:00.000000Z", check="reject"),
             {**annotation(4, "2026-01-03T10:00:00.000000Z", check="approve"), "was_cancelled": True})
    assert [(a.annotator, a.get("check")) for a in annotations_of(t)] == [("ls-3", "reject")]


def test_checks_decide_the_caption_its_sign_offs_and_who_rejected_or_corrected_it():
    writing = [task({"clip_id": "a", "video": "/v/a"}, annotation(2, "t1", clip_check="keep", caption=CAPTION)),
               task({"clip_id": "b", "video": "/v/b"}, annotation(2, "t1", clip_check="reject",
                                                                  reject_reason="a still image")),
               task({"clip_id": "c", "video": "/v/c"}, annotation(2, "t1", clip_check="keep", caption=CAPTION))]
    assert [t["data"]["clip_id"] for t in checking_tasks_due(writing, {"c"})] == ["a"]
    fixed = CAPTION.replace("red shirt", "dark red shirt")
    checking = [task({"clip_id": "a", "writer": "ls-2"}, annotation(3, "t2", check="approve"),
                     annotation(4, "t3", check="correct", corrected_caption=fixed, note="the shirt is dark red"),
                     annotation(5, "t4", check="correct", corrected_caption=CAPTION),  # changes nothing: approves
                     annotation(2, "t5", check="approve")),  # the writer's own check does not count
                task({"clip_id": "c", "writer": "ls-2"}, annotation(3, "t2", check="reject", note="two clips spliced"))]
    assert captions_finished(writing, checking, 3) and not captions_finished(writing, checking[1:], 3)
    captions, clip_checks = caption_export(writing, checking)
    assert clip_checks == [{"clip_id": "a", "checker": "ls-2", "decision": "keep", "note": ""},
                           {"clip_id": "b", "checker": "ls-2", "decision": "reject", "note": "a still image"},
                           {"clip_id": "c", "checker": "ls-2", "decision": "keep", "note": ""}]
    a = captions[0]
    assert (a["caption"], a["writer"], a["checkers"], a["written_caption"]) == (fixed, "ls-2", ["ls-3", "ls-4", "ls-5"],
                                                                                CAPTION)
    export = read_caption_export("captions.jsonl", "".join(json.dumps(r) + "\n" for r in captions).encode())
    table, decisions = bench_caption_table(export, batch="b1", min_words=10, max_words=600, writers_required=1,
                                           checkers_required=3, rejected={"b": "rejected in the manual check by ls-2"},
                                           task_clips={"a": "va", "b": "vb", "c": "vc"})
    assert list(table["clip_id"]) == ["a"]
    assert [(d.item_id, d.verdict, d.reason) for d in decisions] == [
        ("a", "kept", "follows the standardized format; written by ls-2, checked by ls-3, ls-4, ls-5; corrected by "
                      "ls-4 (the shirt is dark red)"),
        ("b", "dropped", "rejected in the manual check by ls-2"),
        ("c", "dropped", "rejected by checker ls-3: two clips spliced")]
    assert decisions[2].code == "rejected_by_checker" and decisions[0].detail["checkers"] == ["ls-3", "ls-4", "ls-5"]


def test_verifiers_marks_become_reviews_and_wrong_alone_rejects():
    qa = {"qa_id": "q1", "clip_id": "a", "category": "count", "question": "How many?", "options": ["1", "2", "3"],
          "answer_index": 1}
    data = verification_task(qa, "/v/a")["data"]
    assert (data["options"], data["answer"]) == ("A. 1\nB. 2\nC. 3", "B")
    tasks = [task(data, annotation(3, "t1", verdict="right"),
                  annotation(4, "t2", verdict="wrong", corrected_answer="C", corrected_options="1\n2\n 3 \n",
                             note="three")),
             task({**data, "qa_id": "q2"}, annotation(3, "t3", verdict="wrong", note="unanswerable")),
             task({**data, "qa_id": "gone"}, annotation(3, "t0", verdict="right"))]
    rows = review_rows(tasks, ["q1", "q2"])
    assert [(r["qa_id"], r["reviewer_id"], r["decision"], r["corrected_answer"], r["corrected_options"])
            for r in rows] == [("q1", "ls-3", "approve", "", ""), ("q1", "ls-4", "correct", "C", '["1", "2", "3"]'),
                               ("q2", "ls-3", "reject", "", "")]
    reviews = reviews_from_records(rows)
    assert (reviews[1].answer_index, reviews[1].options, reviews[2].note) == (2, ("1", "2", "3"), "unanswerable")
    progress = step_progress("qa_verification", tasks[:2], 2)
    assert (progress.done, progress.total, dict(progress.per_annotator)) == (1, 2, {"ls-3": 2, "ls-4": 1})
    assert progress.agreement() == "0% (0 of 1 tasks)"


def test_the_writers_task_offers_the_machine_caption_as_a_prediction():
    clip = {"clip_id": "c", "video_id": "v", "length_s": 6.04, "width": 640, "height": 360, "fps": 29.97,
            "description": "a man juggles"}
    made = writing_task(clip, "/data/local-files/?d=clips/c.mp4", CAPTION, "passes")
    assert made["data"]["facts"] == "6.0 s, 640x360, 30 fps"
    assert made["predictions"][0]["result"][0] == {"from_name": "caption", "to_name": "video", "type": "textarea",
                                                   "value": {"text": [CAPTION]}}
    assert writing_task(clip, "/v", None, "none")["predictions"] == []


def test_videos_are_served_from_the_media_store_under_the_document_root_or_presigned(tmp_path):
    media = LocalObjectStore(tmp_path / "home" / "media")
    media.put_bytes("clips/a b.mp4", b"x")
    tool = LabelStudioResource(url="http://127.0.0.1:1", token="t", document_root=str(tmp_path / "home"))
    assert tool.video_url(media, "clips/a b.mp4") == "/data/local-files/?d=media/clips/a%20b.mp4"
    assert tool.local_storage_folder(media) == str((tmp_path / "home" / "media").resolve())
    elsewhere = LabelStudioResource(url="http://127.0.0.1:1", token="t", document_root=str(tmp_path / "other"))
    assert elsewhere.video_url(media, "clips/a b.mp4") is None
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="media")
        url = tool.video_url(S3ObjectStore("s3://media/store", s3), "clips/a.mp4")
    assert url.startswith("https://media.s3.amazonaws.com/store/clips/a.mp4?") and "Expires=" in url
