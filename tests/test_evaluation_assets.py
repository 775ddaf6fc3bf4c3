"""HAICBench evaluation through Dagster and `haic evaluate`: an eval_models partition answers the
benchmark against a local OpenAI-compatible fake server (the real openai SDK), the results are
DuckDB views, and the leaderboard is printed in the paper's layout."""

from __future__ import annotations

import json

import duckdb
import pytest

from haic_core.evaluation.models import EvalModel
from haic_core.haicbench.lmms_eval_utils import LETTERS
from haic_core.haicbench.qa import CATEGORIES
from haic_assets.definitions import build_definitions
from haic_assets.evaluation.jobs import EVAL_LEADERBOARD_JOB, EVALUATE_MODEL_JOB
from haic_platform.evaluation.registry import register
from haic_cli.main import main
from haic_assets.platform.partitions import annotation_batches
from tests.bench_samples import BATCH, export_sample_task, land_sample_batch
from tests.helpers import home_without_llm, dagster_instance
from tests.llm_servers import SMALL_CLIP, FakeOpenAIServer, prompt_text_of
from tests.test_evaluation import clip_folder, implied_accuracy, small_split

RAW_FILES = {"ops": {"qa_pairs": {"config": {"source": "raw_files"}}}}  # the sample's hand-written raw answers


def run_sample_batch(defs, instance):
    instance.add_dynamic_partitions(annotation_batches.name, [BATCH])
    return defs.resolve_job_def("haicbench_batch").execute_in_process(
        partition_key=BATCH, instance=instance, run_config=RAW_FILES, raise_on_error=False)


@pytest.fixture
def home(tmp_path, monkeypatch):
    return home_without_llm(tmp_path, monkeypatch)


def test_a_model_always_answering_c_scores_exactly_what_the_answer_positions_imply(home, tmp_path, video):
    split = small_split()
    defs = build_definitions()
    defs.resources["storage"].tables().write("haicbench_split", "all", split)
    root = clip_folder(tmp_path / "media", split["clip_id"], video(SMALL_CLIP))
    with FakeOpenAIServer("C", output_tokens=1) as server, dagster_instance(home) as instance:
        spec = EvalModel(model="always-c", base_url=f"{server.base_url}/v1", frames=2)
        key = register(home, spec, instance)
        run = defs.resolve_job_def(EVALUATE_MODEL_JOB).execute_in_process(
            partition_key=key, instance=instance, raise_on_error=False,
            run_config={"ops": {"eval_answers": {"config": {"video_root": str(root)}}}})
        assert run.success
        assert server.requests["chat.completions"] == len(split)
        body = server.bodies[0]
        assert sum(p["type"] == "image_url" for p in body["messages"][0]["content"]) == 2  # the frames asked for
        assert body["temperature"] == 0.0  # greedy
        assert "A. " in prompt_text_of(body) and "Reply with the letter" in prompt_text_of(body)
        board_run = defs.resolve_job_def(EVAL_LEADERBOARD_JOB).execute_in_process(instance=instance,
                                                                                  raise_on_error=False)
        assert board_run.success
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        results = con.execute("SELECT category, n, correct, unparsed, accuracy FROM eval_results "
                              "WHERE eval_model = ?", [key]).df().set_index("category")
        answers = con.execute("SELECT qa_id, reply, predicted, verdict FROM eval_answers").df()
        board = con.execute('SELECT model, source, "Avg." FROM eval_leaderboard').df()
    expected = implied_accuracy(split, "C")
    assert expected["action_sequence"] != expected["attribute"]  # five options vs four: the test can tell
    for category in CATEGORIES:
        assert results.loc[category, "accuracy"] == pytest.approx(expected[category])
        assert results.loc[category, "n"] == 12 and results.loc[category, "unparsed"] == 0
    assert results.loc["average", "accuracy"] == pytest.approx(sum(expected.values()) / 5)
    assert len(answers) == 60 and set(answers["predicted"]) == {"C"} and set(answers["reply"]) == {"C"}
    assert "ours (always-c__standard__f2)" in set(board["source"])
    assert (board["source"] == "paper (reference)").sum() == 17  # Tables 2 and 3 as MISSION.md gives them


def test_haic_evaluate_on_the_sample_batch_prints_the_papers_layout(home, media_dir, capsys):
    land_sample_batch(home)
    defs = build_definitions()
    export_sample_task(defs.resources["storage"], media_dir)
    with dagster_instance(home) as instance:
        assert run_sample_batch(defs, instance).success
    verified = defs.resources["storage"].tables().read("qa_verified", BATCH)
    answers = {q: LETTERS[a] for q, a in zip(verified["question"], verified["answer_index"])}

    def reply(body):  # right on count and attribute questions, "A man ..." (unreadable) on the rest
        text = prompt_text_of(body)
        question = next(q for q in answers if q in text)
        category = verified.set_index("question").loc[question, "category"]
        return f"The answer is {answers[question]}." if category in ("count", "attribute") else "A man is moving."

    with FakeOpenAIServer(reply, output_tokens=4) as server:
        code = main(["evaluate", "--model", "fake-vlm", "--base-url", f"{server.base_url}/v1", "--frames", "2",
                     "--qa-set", f"verified:{BATCH}", "--video-root", str(media_dir / "videos")])
    out = capsys.readouterr().out
    assert code == 0, out
    header = next(line for line in out.splitlines() if "Avg." in line)
    assert header.split() == ["model", "protocol", "frames", "source", "Avg.", "Action", "Details", "Action",
                              "Sequence", "Interaction", "Count", "Attribute", "Errors", "%"]
    ours = next(line for line in out.splitlines() if "ours (fake-vlm" in line)
    assert ours.split()[-3:] == ["100.0", "100.0", "0.0"]  # count and attribute right; no call failed
    assert "paper (reference)" in out and "LLaVA-Video-ActionPro-7B" in out
    assert f"fake-vlm__standard__f2__verified-{BATCH}" in out
    counts = out.split("HAICBench, standard")[0]
    assert "unparsed" in counts


def test_haic_evaluate_caption_protocol_reports_the_judges_refusals(home, media_dir, capsys, monkeypatch):
    """The evaluated model captions each clip; the platform's LLM (here the same local server, as the
    judge) answers count questions from the caption and says every other question is not mentioned."""
    land_sample_batch(home)
    with FakeOpenAIServer(lambda body: "", output_tokens=4) as server:
        monkeypatch.setenv("HAIC_LLM_PROVIDER", "openai")
        monkeypatch.setenv("OPENAI_BASE_URL", f"{server.base_url}/v1")
        monkeypatch.setenv("HAIC_LLM_MODEL", "judge-model")
        defs = build_definitions()
        export_sample_task(defs.resources["storage"], media_dir)
        with dagster_instance(home) as instance:
            assert run_sample_batch(defs, instance).success
        verified = defs.resources["storage"].tables().read("qa_verified", BATCH).set_index("question")

        def reply(body):
            text = prompt_text_of(body)
            if "Description:" not in text:
                return "There is 1 subject in the video. The subject moves."  # the caption
            question = next(q for q in verified.index if f"Question: {q}\n" in text)
            if verified.loc[question, "category"] == "count":
                return json.dumps({"answer": LETTERS[int(verified.loc[question, "answer_index"])]})
            return json.dumps({"answer": "not mentioned"})

        server.reply = reply
        code = main(["evaluate", "--model", "fake-vlm", "--base-url", f"{server.base_url}/v1", "--frames", "2",
                     "--protocol", "caption", "--qa-set", f"verified:{BATCH}", "--video-root", str(media_dir / "videos")])
    out = capsys.readouterr().out
    assert code == 0, out
    counts = {line.split()[0]: line.split() for line in out.split("HAICBench, caption")[0].splitlines()
              if line.split() and line.split()[0] in (*CATEGORIES, "average")}
    n_count = int((verified["category"] == "count").sum())
    assert counts["count"][1:5] == [str(n_count), str(n_count), "0", "0"]  # n, correct, refused, unparsed
    assert counts["average"][3] == str(len(verified) - n_count)  # every other question refused
    assert "Human-annotated captions" in out  # the caption table's reference rows
