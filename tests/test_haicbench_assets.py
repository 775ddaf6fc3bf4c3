"""HAICBench through Dagster, one annotation batch: captions -> QA (hand-written raw answers or an
LLM) -> review, the annotation sensor, and reading annotation exports. The release (split,
statistics) is tests/test_haicbench_release.py."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from dagster import build_sensor_context

from haic_core.haicbench.annotations import (bench_caption_table, checkers_list, files_by_batch, imported_answers,
                                             imported_provenance, raw_answer_files, read_caption_export, video_id_of)
from haic_assets.definitions import build_definitions
from haic_assets.haicbench.sensors import annotation_sensor
from haic_assets.platform.partitions import annotation_batches
from haic_resources.llm.resource import NOT_CONFIGURED
from tests.bench_samples import BATCH, export_sample_task, land_sample_batch as land_batch
from tests.haicbench_jobs import (RAW_FILES, annotation_keys, failure_message, home, materialization_metadata,  # noqa: F401 (fixtures)
                                  run_batch, sample_task)
from tests.helpers import dagster_instance, ledger
from tests.llm_servers import FakeOpenAIServer, prompt_text_of

SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "haicbench"


# ---- (a) the sample batch from hand-written raw answers ------------------------------------------------


def test_sample_batch_from_raw_answers_gives_21_qa_2_rejections_and_17_verified(home, sample_task):
    land_batch(home)
    defs = build_definitions()
    tables = defs.resources["storage"].tables()
    with dagster_instance(home) as instance:
        result = run_batch(defs, instance, run_config=RAW_FILES)
        assert result.success, failure_message(result)
    captions = tables.read("bench_captions", BATCH)
    assert sorted(captions["clip_id"]) == ["mmaction2_basketball_2p", "sam2_dog_1p", "sam2_juggle_1p"]
    assert captions.set_index("clip_id")["subject_count"].to_dict() == {
        "mmaction2_basketball_2p": 2, "sam2_dog_1p": 1, "sam2_juggle_1p": 1}
    assert list(captions["checkers"].iloc[0]) == ["team-checker-1", "team-checker-2", "team-checker-3"]

    qa = tables.read("qa_pairs", BATCH)
    assert len(qa) == 21 and set(qa["model"]) == {"imported"} and set(qa["source"]) == {"raw_files"}
    # Soft rules flag, not reject: the dog clip's "after" action-details question, and two basketball
    # questions whose correct option is much longer than the shortest ("He shoots" vs 9 words).
    flags = {(r.clip_id, r.category): list(r.flags) for r in qa.itertuples() if len(r.flags)}
    assert flags == {("sam2_dog_1p", "action_details"): ["before_after"],
                     ("mmaction2_basketball_2p", "action_sequence"): ["option_length_ratio"],
                     ("mmaction2_basketball_2p", "interaction"): ["option_length_ratio"]}
    (flagged,) = qa[(qa["clip_id"] == "sam2_dog_1p") & (qa["category"] == "action_details") &
                    (qa["flags"].map(len) > 0)].itertuples()
    assert json.loads(flagged.rule_values)["before_after"] == {"value": 1.0, "limit": 0.0, "broken": True}
    assert all(o[i] == t for o, i, t in zip(qa["options"], qa["answer_index"], qa["answer_text"]))
    assert all(len(o) == (5 if c in ("action_sequence", "count") else 4) for o, c in zip(qa["options"], qa["category"]))
    verified = tables.read("qa_verified", BATCH)
    assert len(verified) == 17 and int(verified["corrected"].sum()) == 1

    rows = ledger(home)
    by_stage = rows.groupby(["stage", "verdict"]).size().to_dict()
    assert by_stage[("bench_captions", "kept")] == 3
    assert (by_stage[("qa_pairs", "kept")], by_stage[("qa_pairs", "dropped")]) == (21, 2)
    # The flagged QA has no reviews in the sample sheet: not verified.
    assert (by_stage[("qa_verified", "kept")], by_stage[("qa_verified", "dropped")]) == (17, 4)
    assert ("qa_verified", "error") not in by_stage
    assert sorted(rows[(rows["stage"] == "qa_pairs") & (rows["verdict"] == "dropped")]["reason"].str.split(":").str[0]) == [
        "interaction question for a single-subject caption", "more questions than count allows"]
    flagged_row = rows[(rows["stage"] == "qa_pairs") & (rows["item_id"] == flagged.qa_id)].iloc[0]
    assert (flagged_row["verdict"], flagged_row["metric"], flagged_row["value"], flagged_row["threshold"]) == (
        "kept", "before_after", 1.0, 0.0)
    qa_meta = materialization_metadata(result, "qa_pairs")
    assert "answers at A, B, C" in qa_meta["answer_positions"].value and qa_meta["raw_answers"].value == 14


def test_captions_must_name_a_task_clip_carry_their_sign_offs_and_keep_the_format(home, sample_task):
    """The juggling caption is rewritten to break the format, the dog's has two checkers (one of them the
    writer), and a caption names a clip that is not in the batch's annotation task."""
    folder = land_batch(home, with_raw=False, with_reviews=False)
    rows = [json.loads(line) for line in (folder / "captions.jsonl").read_text().splitlines()]
    rows[0]["caption"] = "A man dances to loud music."
    rows[1]["checkers"] = ["team-checker-1", rows[1]["writer"]]
    rows.append({**rows[2], "clip_id": "omega:not_exported-0"})
    (folder / "captions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    defs = build_definitions()
    with dagster_instance(home) as instance:
        result = run_batch(defs, instance, selection=annotation_keys("bench_captions"))
        assert result.success, failure_message(result)
    trail = ledger(home)
    trail = trail[trail["stage"] == "bench_captions"].set_index("item_id")
    assert trail.loc["sam2_juggle_1p", "verdict"] == "dropped"
    assert trail.loc["sam2_juggle_1p", "reason"].startswith("too short")
    dog = trail.loc["sam2_dog_1p"]
    assert (dog.verdict, dog.reason, dog.metric, dog.value, dog.threshold) == (
        "dropped", "1 distinct checker(s) other than the writer < 3 required", "checkers", 1.0, 3.0)
    stray = trail.loc["omega:not_exported-0"]
    assert (stray.verdict, stray.reason) == (
        "error", "clip 'omega:not_exported-0' is not in annotation task sample_batch (3 clips)")
    captions = defs.resources["storage"].tables().read("bench_captions", BATCH)
    assert list(captions["clip_id"]) == ["mmaction2_basketball_2p"]
    assert list(captions["video_id_source"]) == ["annotation task"]


def test_the_sign_offs_a_caption_needs_are_a_setting(home, sample_task):
    """With 2 checkers required (settings.yaml), the dog caption checked by one other person is still
    short of one; with 1 it is imported."""
    folder = land_batch(home, with_raw=False, with_reviews=False)
    rows = [json.loads(line) for line in (folder / "captions.jsonl").read_text().splitlines()]
    rows[1]["checkers"] = ["team-checker-1"]
    (folder / "captions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    for required, verdict in ((2, "dropped"), (1, "kept")):
        (home / "settings.yaml").write_text(f"bench_captions: {{checkers_required: {required}}}\n")
        defs = build_definitions()
        with dagster_instance(home) as instance:
            assert run_batch(defs, instance, selection=annotation_keys("bench_captions")).success
        dog = ledger(home).query("stage == 'bench_captions' and item_id == 'sam2_dog_1p'").iloc[0]
        assert dog.verdict == verdict and (verdict == "kept" or (dog.value, dog.threshold) == (1.0, 2.0))


def test_the_manual_check_drops_rejected_clips_and_a_check_of_another_clip_is_an_error(home, sample_task):
    folder = land_batch(home, with_raw=False, with_reviews=False)
    (folder / "clip_checks.csv").write_text(
        "clip_id,checker,decision,note\n"
        "sam2_juggle_1p,team-checker-1,keep,\n"
        "mmaction2_basketball_2p,team-checker-2,reject,the players leave the frame\n"
        "omega:ghost-0,team-checker-2,keep,\n")
    defs = build_definitions()
    with dagster_instance(home) as instance:
        assert run_batch(defs, instance, selection=annotation_keys("bench_captions")).success
    trail = ledger(home).query("stage == 'bench_captions'").set_index("item_id")
    assert (trail.loc["mmaction2_basketball_2p", "verdict"], trail.loc["mmaction2_basketball_2p", "reason"]) == (
        "dropped", "rejected in the manual check by team-checker-2: the players leave the frame")
    ghost = trail.loc["omega:ghost-0"]
    assert (ghost.verdict, ghost.item_kind, ghost.reason) == (
        "error", "clip_check", "clip_checks.csv row 4: clip 'omega:ghost-0' is not in annotation task sample_batch "
                               "(3 clips)")
    assert sorted(defs.resources["storage"].tables().read("bench_captions", BATCH)["clip_id"]) == [
        "sam2_dog_1p", "sam2_juggle_1p"]


def test_an_annotation_task_names_its_partitions_once_and_a_rerun_exports_them_again(home, media_dir):
    defs = build_definitions()
    with dagster_instance(home) as instance:
        instance.add_dynamic_partitions(annotation_batches.name, ["other_batch"])
        job = defs.resolve_job_def("annotation_task")
        unnamed = job.execute_in_process(partition_key="other_batch", instance=instance, raise_on_error=False)
        assert not unnamed.success and "name the source partitions" in failure_message(unnamed)
    export_sample_task(defs.resources["storage"], media_dir)  # haic annotation-task sample_batch --partition ...
    with dagster_instance(home) as instance:  # the UI's Materialize: no settings
        assert defs.resolve_job_def("annotation_task").execute_in_process(partition_key=BATCH, instance=instance).success
    task = defs.resources["storage"].tables().read("annotation_tasks", BATCH)
    assert list(task["clip_id"]) == ["sam2_juggle_1p", "sam2_dog_1p", "mmaction2_basketball_2p"]
    manifest = (home / "exports" / "annotation_tasks" / BATCH / "manifest.jsonl").read_text().splitlines()
    assert [json.loads(line)["video"] for line in manifest] == [
        "clips/sam2_juggle_1p.mp4", "clips/sam2_dog_1p.mp4", "clips/mmaction2_basketball_2p.mp4"]
    assert (home / "exports" / "annotation_tasks" / BATCH / "clips" / "sam2_dog_1p.mp4").read_bytes() == (
        media_dir / "videos" / "sam2_dog_1p.mp4").read_bytes()


# ---- (b) and (c): QA from an LLM -------------------------------------------------------------------


def test_qa_pairs_from_the_llm_fails_fast_without_a_backend(home, sample_task):
    land_batch(home, with_raw=False)
    defs = build_definitions()
    with dagster_instance(home) as instance:
        result = run_batch(defs, instance, selection=annotation_keys("bench_captions", "qa_pairs"))
    assert not result.success
    assert NOT_CONFIGURED in failure_message(result)


MARKERS = {  # each QA prompt's opening sentence names what it tests; answers in the paper's shapes
    "can count what happens": ("count", 'answer: [{"question": "How many times does the man move?", "opt1": "1", '
                                        '"opt2": "2", "opt3": "3", "opt4": "4", "opt5": "5", "answer": 2}]'),
    "followed the order of actions": ("action_sequence", "answer: [{'question': 'What does the man do immediately "
                                      "after the first move?', 'opt1': 'a jump', 'opt2': 'a wave', 'opt3': 'a nod', "
                                      "'opt4': 'a clap', 'opt5': 'a turn', 'answer': 1}]"),
    "understood how the people in a short video interact": ("interaction", "```json\n```json\n{'question': 'How do "
                                                            "the two players interact?', 'candidates': ['They block', "
                                                            "'They hug', 'They wave', 'They bow'], 'answer': 'A'}\n```\n```"),
    "noticed how the people in a short video look": ("attribute", "```json\n{'question': 'What colour is the top?', "
                                                     "'candidates': ['white', 'red', 'blue', 'green'], 'answer': 'B'}\n```"),
    "noticed the fine details": ("action_details", json.dumps([{
        "question": "Which hand is used?", "options": ["left", "right", "both", "neither"], "answer": 3}])),
}


def fake_qa_answer(body) -> str:
    """What the test's 'LLM' answers: one valid question for the category the prompt asks about."""
    prompt = " ".join(prompt_text_of(body).split())
    (answer,) = [text for marker, (_, text) in MARKERS.items() if marker in prompt]
    return answer


def test_qa_pairs_through_the_openai_sdk_and_a_second_run_sends_nothing(home, sample_task, monkeypatch):
    land_batch(home, with_raw=False, with_reviews=False)
    with FakeOpenAIServer(fake_qa_answer) as server:
        monkeypatch.setenv("OPENAI_API_KEY", "test-key")
        monkeypatch.setenv("OPENAI_BASE_URL", f"{server.base_url}/v1")
        defs = build_definitions()
        selection = annotation_keys("bench_captions", "qa_pairs")
        with dagster_instance(home) as instance:
            first = run_batch(defs, instance, selection=selection)
            assert first.success, failure_message(first)
            # 3 captions x 5 categories, less interaction for the two single-subject captions.
            assert server.total_requests == 13
            server.reset_counts()
            second = run_batch(defs, instance, selection=selection)
            assert second.success, failure_message(second)
            assert server.total_requests == 0
    qa = defs.resources["storage"].tables().read("qa_pairs", BATCH)
    assert len(qa) == 13 and set(qa["source"]) == {"llm"} and qa["cached"].all()
    assert not qa["flags"].map(len).any()
    assert qa["category"].value_counts().to_dict() == {"action_details": 3, "action_sequence": 3, "count": 3,
                                                       "attribute": 3, "interaction": 1}
    meta = materialization_metadata(second, "qa_pairs")
    assert meta["requests_sent"].value == 0 and meta["cache_hits"].value == 13


# ---- the sensor ---------------------------------------------------------------------------------------


def test_the_annotation_sensor_waits_for_the_task_then_asks_for_reviews_once_qa_exist(home, media_dir):
    defs = build_definitions()
    with dagster_instance(home) as instance:
        land_batch(home)

        def tick(cursor=None):
            with build_sensor_context(instance=instance, resources=defs.resources, cursor=cursor) as context:
                return annotation_sensor(context)

        waiting = tick()  # captions without an annotation task: the batch is known, nothing runs
        assert waiting.dynamic_partitions_requests[0].partition_keys == [BATCH] and not waiting.run_requests
        export_sample_task(defs.resources["storage"], media_dir)
        first = tick(waiting.cursor)
        (request,) = first.run_requests  # QA not generated yet: no review run
        assert request.run_config == RAW_FILES and request.partition_key == BATCH
        defs.resources["storage"].tables().write("qa_pairs", BATCH, pd.DataFrame({"qa_id": ["q"]}))
        second = tick(first.cursor)
        assert [r.asset_selection[0].to_user_string() for r in second.run_requests] == ["qa_verified"]
        assert not tick(second.cursor).run_requests


# ---- reading annotation exports ---------------------------------------------------------------------


@pytest.mark.parametrize("cell, expected", [
    ('["a", "b"]', ["a", "b"]), ("a; b;c", ["a", "b", "c"]), (["x"], ["x"]), (None, []), (float("nan"), [])])
def test_checkers_come_as_json_lists_or_separated_text(cell, expected):
    assert checkers_list(cell) == expected


def test_video_id_from_the_export_or_our_clip_id_pattern_or_the_clip_itself():
    assert video_id_of({"clip_id": "c1", "video_id": "yt_abc"}) == ("yt_abc", "annotation")
    assert video_id_of({"clip_id": "omega:xyz-0123456789"}) == ("omega:xyz", "clip_id pattern")
    assert video_id_of({"clip_id": "sam2_dog_1p", "video_id": ""}) == ("sam2_dog_1p", "clip_id (no video id given)")


def test_a_csv_export_reads_like_the_jsonl_one():
    rows = [json.loads(line) for line in (SAMPLES / "captions.jsonl").read_text().splitlines()]
    csv = pd.DataFrame([{**r, "checkers": ";".join(r["checkers"])} for r in rows]).to_csv(index=False).encode()
    export = read_caption_export("captions.csv", csv)
    assert list(export["clip_id"]) == [r["clip_id"] for r in rows]
    assert checkers_list(export["checkers"].iloc[0]) == rows[0]["checkers"]
    assert list(export["caption"]) == [r["caption"] for r in rows]
    from_jsonl = read_caption_export("captions.jsonl", (SAMPLES / "captions.jsonl").read_bytes())
    assert bench_caption_table(export, batch="b", min_words=1, max_words=1000)[0].equals(
        bench_caption_table(from_jsonl, batch="b", min_words=1, max_words=1000)[0])


def test_caption_rows_without_a_clip_id_or_repeated_are_dropped_and_missing_columns_refused():
    export = pd.DataFrame({"clip_id": ["", "sam2_dog_1p", "sam2_dog_1p"], "caption": ["x", "y", "z"]})
    table, decisions = bench_caption_table(export, batch="b", min_words=1, max_words=1000)
    assert [(d.item_id, d.verdict, d.reason) for d in decisions[::2]] == [
        ("b#row1", "dropped", "missing clip_id"), ("sam2_dog_1p", "dropped", "duplicate clip_id (row 2)")]
    with pytest.raises(ValueError, match=r"lacks columns \['caption'\]"):
        bench_caption_table(pd.DataFrame({"clip_id": ["c"]}), batch="b", min_words=1, max_words=1000)


def test_a_batch_folder_is_read_from_the_store_keys():
    keys = ["b1/captions.csv", "b1/captions.jsonl", "b1/qa_raw/c__count.txt", "b1/qa_raw/old/c__count.txt",
            "b1/qa_raw/provenance.json", "b2/reviews.csv", "stray.txt"]
    batches = files_by_batch(keys)
    assert sorted(batches) == ["b1", "b2"] and "captions.jsonl" in batches["b1"]
    assert raw_answer_files(batches["b1"]) == ["c__count.txt"]
    assert imported_provenance(None) == ("imported", "imported")
    assert imported_provenance(b'{"model": "m"}') == ("m", "imported")
    answers, orphans = imported_answers({"c__count.txt": b"[]\r\n", "d__count.txt": b"[]", "c__bogus.txt": b"[]"},
                                        model="m", prompt_version="p", clip_ids={"c"}, categories=["count"])
    assert list(answers) == [("c", "count")] and answers[("c", "count")].text == "[]\n"
    assert orphans == ["d__count.txt", "c__bogus.txt"]
