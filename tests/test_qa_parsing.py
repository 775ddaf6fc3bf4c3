"""QA parsing: every shape LLMs answer in, every rule of MISSION §3 with its reason, and the
qa_pairs rows made from parsed answers."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from haic_core.haicbench.qa import CATEGORIES, CATEGORY_RULES, SOFT_RULES, QARules, make_qa_id
from haic_core.haicbench.qa_generation import QA_COLUMNS, RawAnswer, qa_pairs_table, questions_to_ask
from haic_core.haicbench.qa_parsing import EMPTY_ANSWER_REASON, parse_qa_response, read_qa_answer
from haic_resources.llm.prompts import load_template, render

OPTS4 = ["He waves", "He jumps", "He claps", "He nods"]
OPTS5 = ["He waves", "He jumps", "He claps", "He nods", "He sits"]


STRICT = QARules(strictness={rule: "reject" for rule in SOFT_RULES})


def parse(text, category="action_details", subject_count=None, rules=QARules()):
    return parse_qa_response(text, clip_id="clip1", category=category, model="m", prompt_version="v1",
                             subject_count=subject_count, rules=rules)


def flags_of(text, category="action_details"):
    (parsed,) = read_qa_answer(text, clip_id="clip1", category=category, model="m", prompt_version="v1").accepted
    return {m.rule: (m.value, m.limit) for m in parsed.measures if m.broken}


def only_reason(text, category="action_details", subject_count=None, rules=STRICT) -> str:
    accepted, rejected = parse(text, category, subject_count, rules)
    assert accepted == []
    assert len(rejected) == 1
    assert rejected[0].item_kind == "qa" and rejected[0].verdict == "dropped" and rejected[0].parent_id == "clip1"
    return rejected[0].reason


# ---- shapes ----------------------------------------------------------------------------------

def test_plain_json_list_with_option_numbers():
    text = json.dumps([{"question": "Which hand waves?", "options": OPTS4, "answer": 3}])
    (qa,), rejected = parse(text)
    assert rejected == []
    assert qa.answer_index == 2 and qa.options == tuple(OPTS4) and qa.category == "action_details"
    assert qa.qa_id == make_qa_id("clip1", "action_details", "Which hand waves?")
    assert (qa.model, qa.prompt_version, qa.clip_id) == ("m", "v1", "clip1")


def test_several_lists_separated_by_commas():
    one = json.dumps([{"question": "Q one?", "options": OPTS5, "answer": "2"}])
    two = json.dumps([{"question": "Q two?", "options": OPTS5, "answer": 5}])
    accepted, rejected = parse(f"{one}, {two}", "action_sequence")
    assert [q.question for q in accepted] == ["Q one?", "Q two?"]
    assert [q.answer_index for q in accepted] == [1, 4] and rejected == []


def test_single_object_with_commentary_around_it():
    text = 'Sure! Here it is:\n{"question": "How do they greet?", "options": %s, "answer": "B"}\nHope this helps.' % json.dumps(OPTS4)
    (qa,), rejected = parse(text, "interaction", subject_count=2)
    assert qa.answer_index == 1 and rejected == []


def test_single_quoted_pseudo_json():
    text = "[{'question': 'What colour is the cap?', 'options': ['red', 'blue', 'green', 'black'], 'answer': 'D', 'valid': true}]"
    (qa,), _ = parse(text, "attribute")
    assert qa.options == ("red", "blue", "green", "black") and qa.answer_index == 3


def test_fenced_code_block_with_trailing_commentary():
    text = "```json\n" + json.dumps([{"question": "How many jumps?", "options": ["1", "2", "3", "4", "5"], "answer": 4}]) + "\n```\nLet me know!"
    (qa,), _ = parse(text, "count")
    assert qa.answer_index == 3


def test_wrapper_object_with_questions_key():
    text = json.dumps({"questions": [{"question": "Which foot kicks?", "options": OPTS4, "answer": 1}]})
    (qa,), _ = parse(text)
    assert qa.answer_index == 0


@pytest.mark.parametrize("answer, expected", [("B", 1), ("B.", 1), ("(B)", 1), ("b", 1), ("D) He nods", 3),
                                              ("2", 1), (4, 3), ("He claps", 2), ("Option 3", 2)])
def test_answer_forms(answer, expected):
    (qa,), _ = parse(json.dumps([{"question": "Q?", "options": OPTS4, "answer": answer}]), "attribute")
    assert qa.answer_index == expected


def test_lettered_options_lose_their_labels():
    options = ["A. He waves", "B. He jumps", "C. He claps", "D. He nods"]
    (qa,), _ = parse(json.dumps([{"question": "Q?", "options": options, "answer": "(C)"}]), "attribute")
    assert qa.options == tuple(OPTS4) and qa.answer_index == 2


def test_options_that_start_with_the_article_a_keep_it():
    options = ["A man waves", "A woman jumps", "A boy claps", "A girl nods"]
    (qa,), _ = parse(json.dumps([{"question": "Who acts?", "options": options, "answer": 1}]), "attribute")
    assert qa.options == tuple(options)


def test_explicit_empty_list_is_zero_qa_with_its_reason():
    accepted, (decision,) = parse("[]", "count")
    assert accepted == [] and (decision.verdict, decision.reason) == ("dropped", EMPTY_ANSWER_REASON)


def test_qa_id_is_deterministic_and_ignores_whitespace():
    assert make_qa_id("c", "count", "How  many?") == make_qa_id("c", "count", "How many?")
    assert make_qa_id("c", "count", "How many?") != make_qa_id("c", "attribute", "How many?")


# ---- rules -----------------------------------------------------------------------------------

def item(question="Which hand waves?", options=OPTS4, answer=1):
    return json.dumps([{"question": question, "options": options, "answer": answer}])


def test_unparseable_text_is_one_rejection():
    assert only_reason("I cannot help with that.") == "unparseable response: no JSON list or object found"


def test_wrong_option_count():
    assert only_reason(item(options=OPTS5)) == "wrong option count: 5 options, action_details needs 4"
    assert only_reason(item(options=OPTS4), "count") == "wrong option count: 4 options, count needs 5"


def test_answer_out_of_range():
    assert only_reason(item(answer=5)) == "answer out of range: option 5 of 4"
    assert only_reason(item(answer=0)) == "answer out of range: option 0 of 4"
    assert only_reason(item(answer="E")) == "answer out of range: option 5 of 4"


def test_option_over_fifteen_words():
    long = "he slowly raises his left hand above his head and then waves it to the crowd twice"
    assert only_reason(item(options=[long, "He jumps up and down", *OPTS4[2:]]),
                       rules=QARules(strictness={"option_words": "reject"})) == \
        "option over 15 words: option 1 has 17 words"
    assert flags_of(item(options=[long, *OPTS4[1:]])) == {"option_words": (17.0, 15.0),
                                                         "option_length_ratio": (8.5, 3.0)}


def test_fifteen_words_is_allowed():
    fifteen = " ".join(["word"] * 15)
    accepted, _ = parse(item(options=[fifteen, *OPTS4[1:]]))
    assert len(accepted) == 1


def test_duplicate_options():
    assert only_reason(item(options=["He waves", "he waves.", "He claps", "He nods"])) == "duplicate options: 'he waves.'"


@pytest.mark.parametrize("question, where", [("What does Subject 2 do with the ball?", "question"),
                                             ("What does subject 1 hold?", "question")])
def test_numbered_subjects_in_question(question, where):
    reason = only_reason(item(question=question))
    assert reason.startswith("numbered subject naming: ") and reason.endswith(f"in {where}")
    assert flags_of(item(question=question)) == {"numbered_subject": (1.0, 0.0)}


def test_numbered_subjects_in_options():
    reason = only_reason(item(options=["Subject 2 waves", *OPTS4[1:]]))
    assert reason == "numbered subject naming: 'Subject 2' in option 1"


def test_count_question_must_start_with_how_many():
    text = item(question="What is the number of jumps?", options=["1", "2", "3", "4", "5"])
    assert only_reason(text, "count") == "count question does not start with 'How many'"
    assert flags_of(text, "count") == {"count_phrasing": (0.0, 1.0)}


def test_before_after_in_action_details():
    assert only_reason(item(question="What does the man do after he jumps?")) == \
        "before/after wording in action details: 'after' in question"
    assert only_reason(item(options=["He waves before leaving", *OPTS4[1:]])) == \
        "before/after wording in action details: 'before' in option 1"
    # The paper's own action-details example asks "After ...": a flag by default.
    assert flags_of(item(question="After he jumps, which hand does the man wave?")) == {"before_after": (1.0, 0.0)}


def test_before_after_allowed_in_action_sequence():
    accepted, _ = parse(item(question="What does the man do immediately after he jumps?", options=OPTS5), "action_sequence")
    assert len(accepted) == 1


def test_interaction_for_single_subject_caption():
    assert only_reason(item(), "interaction", subject_count=1) == "interaction question for a single-subject caption"
    accepted, _ = parse(item(), "interaction", subject_count=2)
    assert len(accepted) == 1


def test_extra_questions_beyond_the_allowance_are_rejected():
    items = [{"question": f"How many jumps {k}?", "options": ["1", "2", "3", "4", "5"], "answer": 1} for k in range(5)]
    accepted, rejected = parse(json.dumps(items), "count")
    assert [q.question for q in accepted] == ["How many jumps 0?", "How many jumps 1?", "How many jumps 2?"]
    assert [d.reason for d in rejected] == ["more questions than count allows: 3 per caption"] * 2


def test_a_broken_question_does_not_use_a_slot():
    items = [{"question": "Q before?", "options": OPTS4, "answer": 1}, {"question": "Q1?", "options": OPTS4, "answer": 1},
             {"question": "Q2?", "options": OPTS4, "answer": 2}]
    accepted, rejected = parse(json.dumps(items), rules=STRICT)
    assert [q.question for q in accepted] == ["Q1?", "Q2?"] and len(rejected) == 1


def test_missing_answer_and_options():
    assert only_reason(json.dumps([{"question": "Q?", "options": OPTS4}])) == "missing answer"
    assert only_reason(json.dumps([{"question": "Q?", "answer": 1}])) == "missing options"


def test_unknown_category_raises():
    with pytest.raises(ValueError, match="unknown QA category"):
        parse("[]", "emotion")


# ---- prompt templates ------------------------------------------------------------------------

@pytest.mark.parametrize("category", CATEGORIES)
def test_prompt_template_states_the_category_rules(category):
    text, version = load_template(f"qa_{category}")
    rule = CATEGORY_RULES[category]
    assert f"exactly {rule.n_options} options" in text.lower()
    assert "15 words" in text and "Subject 1" in text and "JSON" in text
    assert ("option letter" if rule.answer_given_as == "letter" else "option number") in text
    assert render(text, caption="THE CAPTION").rstrip().endswith("THE CAPTION")
    assert version.startswith(f"qa_{category}/")


@pytest.mark.parametrize("category", CATEGORIES)
def test_the_prompts_worked_example_is_in_the_shape_the_parser_reads(category):
    text, _ = load_template(f"qa_{category}")
    example = text.split("Answer:\n", 1)[1].split("\n\nNow the caption", 1)[0]
    reading = read_qa_answer(example, clip_id="example", category=category, model="m", prompt_version="v",
                             subject_count=2)
    assert reading.rejections == []
    assert len(reading.accepted) == CATEGORY_RULES[category].max_questions
    assert all(parsed.flags == () for parsed in reading.accepted)
    if CATEGORY_RULES[category].answer_given_as == "letter":
        assert '"candidates"' in example and example.startswith("{")
    else:
        assert example.startswith("answer: [") and '"opt1"' in example


def test_the_interaction_prompt_names_the_single_subject_sentence():
    text, _ = load_template("qa_interaction")
    assert "\nNo subject interaction.\n" in text


def test_the_recaption_prompt_passes_the_original_description_and_shows_the_format():
    text, version = load_template("caption_recaption")
    from haic_core.haic_train.caption_format import check_caption

    assert "THE ORIGINAL" in render(text, original_description="THE ORIGINAL")
    example = text.split("fly a kite in the park\":\n\n", 1)[1].split("\n\nNow write", 1)[0]
    assert check_caption(example).verdict == "kept" and version.startswith("caption_recaption/")


# ---- from captions to QA pairs ---------------------------------------------------------------

def test_single_subject_captions_get_no_interaction_question_unless_asked():
    captions = pd.DataFrame({"clip_id": ["one", "two", "unknown"], "subject_count": [1, 2, None]}).astype(
        {"subject_count": "Int64"})
    assert questions_to_ask(captions, ["interaction", "count"], False) == [
        ("one", "count"), ("two", "interaction"), ("two", "count"), ("unknown", "interaction"), ("unknown", "count")]
    assert len(questions_to_ask(captions, ["interaction", "count"], True)) == 6


def test_answers_become_shuffled_qa_rows_with_a_decision_each():
    captions = pd.DataFrame({"clip_id": ["clip1"], "video_id": ["v1"], "subject_count": [2]}).astype(
        {"subject_count": "Int64"})
    text = json.dumps([{"question": "Which hand waves?", "options": OPTS4, "answer": 3},
                       {"question": "Which hand waves after?", "options": OPTS4, "answer": 1}])
    table, decisions = qa_pairs_table({("clip1", "action_details"): RawAnswer(text, "m", "v1", cached=True)},
                                      captions, "llm")
    assert list(table.columns) == QA_COLUMNS and len(table) == 2
    row = table.iloc[0]
    assert row["options"][row["answer_index"]] == OPTS4[2] == row["answer_text"] and row["generated_answer_index"] == 2
    assert (row["video_id"], row["source"], bool(row["cached"])) == ("v1", "llm", True)
    assert [list(f) for f in table["flags"]] == [[], ["before_after"]]
    assert json.loads(table["rule_values"].iloc[1])["before_after"] == {"value": 1.0, "limit": 0.0, "broken": True}
    flagged = [d for d in decisions if d.item_id == table["qa_id"].iloc[1]][0]
    assert (flagged.verdict, flagged.reason, flagged.metric, flagged.value, flagged.threshold) == (
        "kept", "parsed; flagged: before_after", "before_after", 1.0, 0.0)
    strict_table, strict_decisions = qa_pairs_table(
        {("clip1", "action_details"): RawAnswer(text, "m", "v1")}, captions, "llm", QARules(strictness={"before_after": "reject"}))
    assert len(strict_table) == 1 and sorted(d.verdict for d in strict_decisions) == ["dropped", "kept"]
