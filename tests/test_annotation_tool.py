"""HAICBench's human steps in a real Label Studio (127.0.0.1, its own data folder), as a team works: the
batch's clips pushed as tasks (twice: no duplicate), one writer and three checkers, then two verifiers of
whom one corrects an answer, all through the tool's API with their own tokens; the annotation sensor moves
the work between steps and imports it; the split is built from it and `haic why` names who signed off. A
caption a checker rejected never reaches the split, and an edit after import re-curates its partition."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest
from dagster import build_sensor_context

pytest.importorskip("label_studio_sdk", reason="the annotation extra is not installed (uv sync --extra annotation)")

from label_studio_sdk import LabelStudio  # noqa: E402

from haic_assets.definitions import build_definitions  # noqa: E402
from haic_assets.haicbench.sensors import annotation_sensor  # noqa: E402
from haic_cli.main import main  # noqa: E402
from haic_core.haicbench.qa import CATEGORIES, OPTION_LETTERS  # noqa: E402
from tests.bench_samples import BATCH, CLIPS_PARTITION, SAMPLES, seed_sample_clips  # noqa: E402
from tests.helpers import dagster_instance, home_without_llm, ledger  # noqa: E402
from tests.label_studio_server import LabelStudioServer, free_port  # noqa: E402

pytestmark = [pytest.mark.annotation_tool, pytest.mark.timeout(1500)]
JUGGLE, DOG, BASKETBALL = "sam2_juggle_1p", "sam2_dog_1p", "mmaction2_basketball_2p"


@pytest.fixture
def tool(tmp_path, monkeypatch):
    home = home_without_llm(tmp_path, monkeypatch)
    server = LabelStudioServer(tmp_path / "label-studio", document_root=home)
    try:
        admin = server.admin()
        monkeypatch.setenv("HAIC_LABEL_STUDIO_URL", server.url)
        monkeypatch.setenv("HAIC_LABEL_STUDIO_TOKEN", admin.token)
        monkeypatch.setenv("HAIC_LABEL_STUDIO_DOCUMENT_ROOT", str(home))
        yield server, admin, home
    finally:
        server.stop()


def choice(name, value):
    return {"from_name": name, "to_name": "video", "type": "choices", "value": {"choices": [value]}}


def text(name, value):
    return {"from_name": name, "to_name": "video", "type": "textarea", "value": {"text": [value]}}


def tasks_by(sdk, project_id, key):
    return {t.data[key]: t for t in sdk.tasks.list(project=project_id, fields="all")}


def project_id(sdk, title):
    (found,) = [p.id for p in sdk.projects.list(title=title) if p.title == title]
    return found


class Batch:
    """The Dagster side: sensor ticks with their cursor, and the runs they ask for executed as the daemon would."""

    def __init__(self, home):
        self.home, self.cursor, self.runs = home, None, []

    def tick(self):
        defs = build_definitions()
        with dagster_instance(self.home) as instance:
            with build_sensor_context(instance=instance, resources=defs.resources, cursor=self.cursor) as context:
                result = annotation_sensor(context)
            for request in result.dynamic_partitions_requests or []:
                instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
            for request in result.run_requests or []:
                run = defs.resolve_job_def(request.job_name or "haicbench_batch").execute_in_process(
                    partition_key=request.partition_key, run_config=request.run_config, instance=instance,
                    asset_selection=request.asset_selection, raise_on_error=False)
                assert run.success, [str(e.message) for e in run.all_events if e.is_step_failure]
                self.runs.append(sorted(k.to_user_string() for k in request.asset_selection))
        self.cursor = result.cursor
        return [sorted(k.to_user_string() for k in r.asset_selection) for r in result.run_requests or []]


def test_a_batch_round_trip_through_label_studio_ends_in_the_split(tool, media_dir, capsys):
    server, admin, home = tool
    staff = {name: server.sign_up(admin, f"{name}@haic.test", f"{name}-password-1")
             for name in ("writer", "checker1", "checker2", "checker3")}
    ids = {name: f"ls-{person.user_id}" for name, person in staff.items()}
    sdk = {name: LabelStudio(base_url=server.url, api_key=person.token) for name, person in staff.items()}
    boss = LabelStudio(base_url=server.url, api_key=admin.token)

    # The sample clips as a source partition's kept clips, cut into the media store, one with a machine caption.
    storage = build_definitions().resources["storage"]
    seed_sample_clips(storage, media_dir)
    for clip in pd.read_csv(SAMPLES / "clips.csv", dtype=str).itertuples():
        (home / "media" / "clips").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(media_dir / "videos" / clip.clip_file, home / "media" / "clips" / clip.clip_file)
    written = {json.loads(line)["clip_id"]: json.loads(line)["caption"]
               for line in (SAMPLES / "captions.jsonl").read_text().splitlines()}
    storage.tables().write("captions", CLIPS_PARTITION, pd.DataFrame({"clip_id": [JUGGLE], "caption": [written[JUGGLE]]}))
    shutil.copytree(SAMPLES / "qa_raw", home / "annotations" / BATCH / "qa_raw")  # QA an LLM wrote elsewhere

    # 1. The batch's clips pushed to the tool, twice: the second push adds nothing.
    for _ in range(2):
        assert main(["annotation-task", BATCH, "--partition", CLIPS_PARTITION]) == 0
    writing = project_id(boss, f"{BATCH}: caption writing")
    tasks = tasks_by(boss, writing, "clip_id")
    assert sorted(tasks) == sorted([JUGGLE, DOG, BASKETBALL])
    assert [p.result[0]["value"]["text"] for p in tasks[JUGGLE].predictions] == [[written[JUGGLE]]]
    assert tasks[JUGGLE].data["format_check"].startswith("The machine caption below passes the format check")
    assert not tasks[DOG].predictions and tasks[DOG].data["format_check"].startswith("No machine caption")
    video = staff["writer"].session.get(server.url + tasks[DOG].data["video"])  # the writer's browser plays it
    assert video.status_code == 200 and video.content == (media_dir / "videos" / "sam2_dog_1p.mp4").read_bytes()

    # 2. One writer keeps every clip and writes its caption; the sensor sends the captions to checking.
    for clip_id, task in tasks.items():
        sdk["writer"].annotations.create(id=task.id, result=[choice("clip_check", "keep"),
                                                             text("caption", written[clip_id])])
    batch = Batch(home)
    assert batch.tick() == []  # captions not checked yet: nothing to import
    checking = project_id(boss, f"{BATCH}: caption checking")
    checks = tasks_by(boss, checking, "clip_id")
    assert sorted(checks) == sorted(tasks) and checks[DOG].data["writer"] == ids["writer"]

    # 3. Three checkers: the juggling caption approved, the dog's corrected by one, the basketball's rejected by one.
    corrected_dog = written[DOG].replace("light blue jacket", "light grey jacket")
    verdicts = {JUGGLE: ("approve", "approve", "approve"), DOG: ("approve", "approve", "correct"),
                BASKETBALL: ("approve", "reject", "approve")}
    for clip_id, decisions in verdicts.items():
        for checker, decision in zip(("checker1", "checker2", "checker3"), decisions):
            result = [choice("check", decision)]
            if decision == "correct":
                result += [text("corrected_caption", corrected_dog), text("note", "the jacket is grey, not blue")]
            if decision == "reject":
                result += [text("note", "the players leave the frame half of the time")]
            sdk[checker].annotations.create(id=checks[clip_id].id, result=result)
    assert batch.tick() == [["bench_captions", "qa_pairs"]]
    tables = storage.tables()
    captions = tables.read("bench_captions", BATCH).set_index("clip_id")
    assert sorted(captions.index) == [DOG, JUGGLE] and captions.loc[DOG, "caption"] == corrected_dog
    trail = ledger(home).query("stage == 'bench_captions'").set_index("item_id")
    signed = f"written by {ids['writer']}, checked by {ids['checker1']}, {ids['checker2']}, {ids['checker3']}"
    assert trail.loc[JUGGLE, "reason"] == f"follows the standardized format; {signed}"
    assert trail.loc[DOG, "reason"] == (f"follows the standardized format; {signed}; corrected by {ids['checker3']} "
                                        "(the jacket is grey, not blue)")
    assert (trail.loc[BASKETBALL, "verdict"], trail.loc[BASKETBALL, "reason"]) == (
        "dropped", f"rejected by checker {ids['checker2']}: the players leave the frame half of the time")

    # 4. The batch's QA go to verification; two verifiers mark them right, one corrects an answer.
    qa = tables.read("qa_pairs", BATCH)
    assert set(qa["clip_id"]) == {DOG, JUGGLE}
    assert batch.tick() == []
    verification = project_id(boss, f"{BATCH}: QA verification")
    questions = tasks_by(boss, verification, "qa_id")
    assert sorted(questions) == sorted(qa["qa_id"])
    fixed = qa[qa["category"] == "count"].iloc[0]
    new_answer = OPTION_LETTERS[(int(fixed.answer_index) + 1) % len(fixed.options)]
    for verifier in ("checker1", "checker2"):
        for qa_id, task in questions.items():
            result = [choice("verdict", "right")]
            if verifier == "checker2" and qa_id == fixed.qa_id:
                result = [choice("verdict", "wrong"), choice("corrected_answer", new_answer),
                          text("note", "the count is off by one")]
            sdk[verifier].annotations.create(id=task.id, result=result)
    assert batch.tick() == [["qa_verified"]]
    verified = tables.read("qa_verified", BATCH).set_index("qa_id")
    assert len(verified) == len(qa) and OPTION_LETTERS[verified.loc[fixed.qa_id, "answer_index"]] == new_answer
    assert batch.tick() == []  # nothing new: no run, no task
    assert len(tasks_by(boss, verification, "qa_id")) == len(qa) and len(tasks_by(boss, checking, "clip_id")) == 3

    # 5. The split from the verified QA; `haic why` on the corrected QA names its verification and sign-offs.
    quota = {c: int((verified["category"] == c).sum()) for c in CATEGORIES}
    defs = build_definitions()
    with dagster_instance(home) as instance:
        release = defs.resolve_job_def("haicbench_release").execute_in_process(
            instance=instance, raise_on_error=False, run_config={"ops": {"haicbench_split": {"config": {
                "n_videos": 2, "n_qa": len(verified), "category_quota": quota}}}})
        assert release.success
    split = tables.read("haicbench_split", "all")
    assert set(split["clip_id"]) == {DOG, JUGGLE} and len(split) == len(verified)  # no basketball
    capsys.readouterr()
    assert main(["why", fixed.qa_id]) == 0
    why = capsys.readouterr().out
    assert f"corrected by reviewer {ids['checker2']}: the count is off by one" in why
    assert f"{signed}" in why and "exported for annotation in batch sample_batch" in why
    rows = ledger(home)
    assert not (rows["reason"].str.contains("@").any() or rows["detail"].str.contains("@").any())  # ids, no e-mail
    assert not [p for p in home.rglob("*") if p.is_file() and admin.token.encode() in p.read_bytes()]  # nor the token

    # 6. Progress per step in the tool.
    assert main(["annotate", "status", BATCH]) == 0
    status = capsys.readouterr().out.splitlines()
    print("\n".join(status))
    n = len(qa)
    assert status[2].split()[:5] == ["caption_writing", "3/3", "-", f"{ids['writer']}:", "3"]
    assert status[3].split()[:5] == ["caption_checking", "3/3", "33%", "(1", "of"]
    assert status[4].split()[:6] == ["qa_verification", f"{n}/{n}", f"{100 * (n - 1) / n:.0f}%", f"({n - 1}",
                                     "of", str(n)]

    # 7. An edit after import: the first verifier now finds an approved QA wrong; its partition is re-curated.
    approved = next(q for q in questions if q != fixed.qa_id)
    (mine,) = [a for a in sdk["checker1"].annotations.list(id=questions[approved].id)
               if a.completed_by == staff["checker1"].user_id]
    sdk["checker1"].annotations.update(id=mine.id, result=[choice("verdict", "wrong"),
                                                           text("note", "two answers fit the video")])
    assert batch.tick() == [["qa_verified"]]
    assert approved not in set(tables.read("qa_verified", BATCH)["qa_id"])
    row = ledger(home).query("stage == 'qa_verified' and item_id == @approved").iloc[0]
    assert (row.verdict, row.reason) == ("dropped", f"rejected by reviewer {ids['checker1']}: two answers fit the video")


def test_a_tick_that_cannot_reach_the_tool_warns_without_the_token_and_tries_again(tmp_path, monkeypatch, capfd):
    home = home_without_llm(tmp_path, monkeypatch)
    monkeypatch.setenv("HAIC_LABEL_STUDIO_URL", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    monkeypatch.setenv("HAIC_LABEL_STUDIO_TOKEN", "secret-token-value")
    build_definitions().resources["storage"].tables().write(
        "annotation_tasks", BATCH, pd.DataFrame({"clip_id": [JUGGLE], "video_id": ["v"]}))
    batch = Batch(home)
    capfd.readouterr()
    assert batch.tick() == []
    log = capfd.readouterr().err
    assert f"WARNING - annotation tool, batch {BATCH}: Label Studio at http://127.0.0.1:" in log
    assert "did not answer listing projects" in log and "secret-token-value" not in log
    assert json.loads(batch.cursor) == {BATCH: {}}  # nothing read: the next tick asks again
