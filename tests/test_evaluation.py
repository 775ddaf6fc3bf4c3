"""HAICBench evaluation: reading letters, the standard and caption protocols against local fake
servers (real SDK clients), the results tables in DuckDB, the leaderboard in the paper's layout."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest

from haic_core.evaluation.models import EvalModel, registry_with
from haic_core.evaluation.protocols import read_judge_reply, read_standard_reply
from haic_core.evaluation.results import LEADERBOARD_COLUMNS, PAPER_COLUMNS, leaderboard, results_table
from haic_core.haicbench.lmms_eval_utils import LETTERS, extract_choice
from haic_core.haicbench.qa import CATEGORIES
from haic_core.haicbench.qa_shuffle import with_balanced_answer_positions
from haic_core.haicbench.split import SplitParams, select_haicbench_split
from haic_platform.evaluation.runner import clip_video, evaluate, model_client
from haic_resources.llm.openai_compatible import OpenAIClient
from tests.llm_servers import SMALL_CLIP, FakeGeminiServer, FakeOpenAIServer, client_options, prompt_text_of
from tests.qa_pool_synth import synthetic_verified_qa_pool
from tests.timing import limit

OPTIONS = ["He waves", "He jumps", "A man sits down", "She claps"]
LLM_ENV = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "GEMINI_API_KEY", "HAIC_LLM_PROVIDER", "HAIC_LLM_MODEL")


@pytest.mark.parametrize("reply, index", [
    ("B", 1), ("(B)", 1), ("b", 1), ("B.", 1), ("B. He jumps", 1), ("(B) he jumps", 1), ("The answer is B", 1),
    ("The answer is B.", 1), ("Answer: (D)", 3), ("I think B", 1), ("He jumps.", 1), ("he jumps", 1),
    ("A man sits down", 2), ("A", 0), ("A.", 0), ("(A) He waves", 0),
    ("A man waves at the camera", None), ("The answer is A man", None), ("", None), ("no idea", None),
    ("E", None),  # beyond the four options
    ("B or D", None),  # two letters and nothing clearer: ambiguous
])
def test_letters_are_read_robustly_without_taking_a_sentence_for_option_a(reply, index):
    assert extract_choice(reply, OPTIONS) == index


def test_unreadable_and_refused_replies_are_recorded_as_such():
    assert read_standard_reply("A man waves", OPTIONS, 0).verdict == "unparsed"
    assert read_standard_reply("B", OPTIONS, 1).verdict == "correct"
    assert read_standard_reply("C", OPTIONS, 1).verdict == "wrong"
    assert read_judge_reply('{"answer": "not mentioned"}', OPTIONS, 1).verdict == "refused"
    assert read_judge_reply("The caption does not mention it.", OPTIONS, 1).verdict == "refused"
    assert read_judge_reply('```json\n{"answer": "B"}\n```', OPTIONS, 1).verdict == "correct"


def test_model_keys_are_safe_and_the_registry_refuses_a_changed_entry():
    spec = EvalModel(model="Qwen/Qwen2-VL-7B-Instruct", base_url="http://gpu:8000/v1", frames=32,
                     qa_set="verified:batch 1")
    assert spec.key == "Qwen-Qwen2-VL-7B-Instruct__standard__f32__verified-batch-1"
    assert not re.search(r"[/: ,]", spec.key)
    registry = registry_with({}, spec)
    assert EvalModel.from_record(registry[spec.key]) == spec
    with pytest.raises(ValueError, match="already registered"):
        registry_with(registry, EvalModel(model=spec.model, base_url="http://other:8000/v1", frames=32,
                                          qa_set=spec.qa_set))
    with pytest.raises(ValueError, match="protocol"):
        EvalModel(model="m", protocol="vibes")


def test_registering_a_model_again_may_set_its_prices_and_keeps_those_it_leaves_out():
    spec = EvalModel(model="gpt-4o", input_price_per_million=2.5, output_price_per_million=10.0)
    registry = registry_with({}, spec)
    assert EvalModel.from_record(registry[spec.key]) == spec
    cheaper = registry_with(registry, EvalModel(model="gpt-4o", input_price_per_million=1.25))
    assert EvalModel.from_record(cheaper[spec.key]) == EvalModel(model="gpt-4o", input_price_per_million=1.25,
                                                                  output_price_per_million=10.0)
    unpriced_again = registry_with(cheaper, EvalModel(model="gpt-4o"))
    assert unpriced_again == cheaper
    with pytest.raises(ValueError, match="already registered"):
        registry_with(registry, EvalModel(model="gpt-4o", base_url="http://x/v1"))
    with pytest.raises(ValueError, match=">= 0"):
        EvalModel(model="m", output_price_per_million=-1.0)


def small_split() -> pd.DataFrame:
    """A 60-QA split (12 per category) chosen the way the real one is, answers balanced over positions."""
    pool = synthetic_verified_qa_pool(n_videos=60, n_qa=360)
    split = select_haicbench_split(pool, SplitParams(n_videos=20, n_qa=60, category_quota={c: 12 for c in CATEGORIES},
                                                     seed=0))
    return with_balanced_answer_positions(split.qa).sort_values("qa_id").reset_index(drop=True)


def implied_accuracy(split: pd.DataFrame, letter: str) -> dict[str, float]:
    """What answering `letter` to everything must score: the share of each category's correct answers at it."""
    hits = split["answer_index"] == LETTERS.index(letter)
    return {c: 100.0 * hits[split["category"] == c].mean() for c in CATEGORIES}


def clip_folder(root, clip_ids, source) -> "Path":
    """One file per clip, each with different bytes (a cache key holds the video's hash, so copies of one
    file would be one video): the real clip with the clip's index of trailing padding bytes."""
    folder = root / "videos"
    folder.mkdir(parents=True, exist_ok=True)
    data = source.read_bytes()
    for index, clip_id in enumerate(sorted(set(clip_ids))):
        (folder / f"{clip_id}.mp4").write_bytes(data + b"\0" * (index + 1))
    return root


def test_caption_protocol_records_the_judges_refusals(tmp_path, monkeypatch, video):
    """The model (Gemini) captions each clip once; the judge (OpenAI-compatible) refuses every other
    question and answers the rest correctly: half are refusals, none unparsed, accuracy 50 %."""
    split = small_split()
    by_question = {q: (i, LETTERS[a]) for i, (q, a) in enumerate(zip(split["question"], split["answer_index"]))}

    def judge_reply(body):
        text = prompt_text_of(body)
        question = re.search(r"^Question: (.*)$", text, re.M).group(1)
        position, letter = by_question[question]
        return json.dumps({"answer": "not mentioned" if position % 2 else letter})

    monkeypatch.setenv("GEMINI_API_KEY", "test-gemini-key")
    root = clip_folder(tmp_path / "media", split["clip_id"], video(SMALL_CLIP))
    locate = lambda clip_id: clip_video(root, clip_id)  # noqa: E731
    with FakeGeminiServer("There is 1 subject in the video. A person stands.", output_tokens=12) as model_server, \
            FakeOpenAIServer(judge_reply, output_tokens=8) as judge_server:
        spec = EvalModel(model="gemini-2.5-pro", provider="gemini", protocol="caption", base_url=model_server.base_url)
        client = model_client(spec, tmp_path / "cache", concurrency=4, timeout_s=limit(5))
        judge = OpenAIClient(**client_options("judge-key", tmp_path / "cache", base_url=f"{judge_server.base_url}/v1",
                                              model="judge-model"))
        answers = evaluate(spec, split.to_dict("records"), locate, client, judge)
        assert model_server.requests["generateContent"] == split["clip_id"].nunique()  # one caption per clip
        sent = judge_server.total_requests
        again = evaluate(spec, split.to_dict("records"), locate, client, judge)
        assert judge_server.total_requests == sent and model_server.requests["generateContent"] == 20  # all cached
    assert again["verdict"].tolist() == answers["verdict"].tolist()
    assert (answers["verdict"] == "refused").sum() == 30 and (answers["verdict"] == "correct").sum() == 30
    assert answers["caption"].str.startswith("There is 1 subject").all()
    assert answers.loc[answers["verdict"] == "refused", "judge_reply"].str.contains("not mentioned").all()
    assert set(answers["judge_model"]) == {"judge-model"}
    results = results_table(answers).set_index("category")
    assert results.loc["average", "refused"] == 30 and results.loc["average", "unparsed"] == 0
    assert results["n"].drop("average").sum() == 60
    for category in CATEGORIES:
        row = results.loc[category]
        assert row["refused"] + row["correct"] == row["n"] == 12
        assert row["accuracy"] == pytest.approx(100.0 * row["correct"] / 12)


def test_leaderboard_follows_the_papers_layout_with_reference_rows_apart():
    results = pd.DataFrame([{"eval_model": "m__standard__f64", "model": "m", "protocol": "standard", "frames": 64,
                             "category": c, "accuracy": 10.0 * i} for i, (c, _) in enumerate(PAPER_COLUMNS)]
                           + [{"eval_model": "m__standard__f64", "model": "m", "protocol": "standard", "frames": 64,
                               "category": "average", "accuracy": 20.0}])
    board = leaderboard(results)
    assert list(board.columns) == LEADERBOARD_COLUMNS
    assert LEADERBOARD_COLUMNS[4:] == ["Avg.", "Action Details", "Action Sequence", "Interaction", "Count", "Attribute",
                                       "Errors %"]
    ours = board[board["source"].str.startswith("ours")]
    assert ours[LEADERBOARD_COLUMNS[4:10]].iloc[0].tolist() == [20.0, 0.0, 10.0, 20.0, 30.0, 40.0]
    paper = board[board["source"] == "paper (reference)"].set_index(["protocol", "model"])
    assert paper.loc[("standard", "Gemini-1.5-Pro"), "Avg."] == 67.0
    assert paper.loc[("caption", "Human-annotated captions"), "Action Details"] == 100.0
    assert len(leaderboard(results, with_reference=False)) == 1


def test_a_key_added_in_the_ui_spells_out_its_model():
    from haic_core.evaluation.models import model_from_key, registry_entry

    assert registry_entry({}, "gpt-4o__standard__f50") == EvalModel(model="gpt-4o", frames=50)
    assert model_from_key("gemini-2.5-pro__gemini__caption__f64__verified-b1") == EvalModel(
        model="gemini-2.5-pro", provider="gemini", protocol="caption", frames=64, qa_set="verified:b1")
    with pytest.raises(KeyError, match="not in the registry"):
        registry_entry({}, "just-a-name")


def test_a_missing_clip_and_an_unreadable_reply_count_as_wrong_and_are_recorded(tmp_path, video):
    split = small_split().head(6)
    root = clip_folder(tmp_path / "media", split["clip_id"].iloc[1:], video(SMALL_CLIP))  # the first clip is missing
    missing = split["clip_id"].iloc[0]
    with FakeOpenAIServer("A man is moving his arms.", output_tokens=6) as server:
        spec = EvalModel(model="vague", base_url=f"{server.base_url}/v1", frames=2)
        answers = evaluate(spec, split.to_dict("records"), lambda clip_id: clip_video(root, clip_id),
                           model_client(spec, tmp_path / "cache", timeout_s=limit(5)))
    lost = answers[answers["clip_id"] == missing]
    assert set(lost["verdict"]) == {"error"} and lost["note"].str.contains("clip video not found").all()
    assert set(answers.loc[answers["clip_id"] != missing, "verdict"]) == {"unparsed"}  # not option A
    totals = results_table(answers).set_index("category").loc["average"]
    assert totals["n"] == 6 and totals["correct"] == 0
    assert totals["errors"] == len(lost) and totals["unparsed"] == 6 - len(lost)
