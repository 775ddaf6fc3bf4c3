"""The rule-based caption judgement: keeps captions in the paper's Figure 1 format, rejects
broken ones with a specific reason."""

from __future__ import annotations

import pytest

from haic_core.haic_train.caption_format import (
    JudgeParseError,
    JudgeScore,
    check_caption,
    declared_subject_count,
    judge_decision,
    parse_judge_score,
)

ARM_WRESTLING = """There are 2 subjects in the video.

The first subject is a man in his thirties with short black hair and a trimmed beard, wearing a grey T-shirt and dark blue jeans, sitting on the left side of a wooden table. He rests his right elbow on the table and clasps the right hand of the man opposite him. He then leans forward, tightens his grip and pushes his forearm to the right. His face tenses and he presses his lips together. Finally he forces the other man's hand down onto the table, lets go and raises both arms above his head.

The second subject is a man in his twenties with curly brown hair, wearing a white tank top and black shorts, sitting on the right side of the table. He grips the hand of the man in the grey T-shirt and braces his left hand against the edge of the table. He leans back and pulls his arm toward himself, but his wrist slowly bends backward. His hand is pushed down onto the table, and he then shakes his head and rubs his right shoulder with his left hand."""

JUGGLING = """There is 1 subject in the video. The subject is a young woman with long blonde hair tied in a ponytail, wearing a red sleeveless top and black leggings, standing in the middle of a park lawn. She throws three orange balls into the air one after another with both hands. She catches each ball as it falls and tosses it up again, keeping all three balls moving in a steady loop. She then steps forward with her right foot while still juggling. Finally she catches all three balls, holds them against her chest and smiles."""

HUG = """There are two subjects in the video.
The first subject is an elderly woman with short grey hair, wearing glasses, a beige cardigan and a long brown skirt, standing near a doorway on the right. She turns toward the boy in the blue hoodie and opens her arms wide. She steps forward, wraps both arms around his shoulders and pats his back twice with her right hand. She then pulls back, keeps her hands on his upper arms and speaks to him with a broad smile.
The second subject is a boy of about ten with short brown hair, wearing a blue hoodie, grey shorts and white sneakers, entering from the left. He runs toward the elderly woman with his arms stretched out. He hugs her around the waist and presses his cheek against her cardigan. He then lets go, steps back and nods several times while looking up at her."""


@pytest.mark.parametrize("caption", [ARM_WRESTLING, JUGGLING, HUG], ids=["armwrestling_2p", "juggling_1p", "hug_2p_words"])
def test_captions_in_the_papers_format_are_kept(caption: str) -> None:
    decision = check_caption(caption, item_id="clip-1")
    assert decision.verdict == "kept", decision.detail["problems"]
    assert decision.metric == "subject_paragraphs"
    assert decision.value == decision.threshold


def test_declared_count_reads_digits_and_words() -> None:
    assert declared_subject_count("There is 1 subject in the video.") == 1
    assert declared_subject_count("There are 3 subjects.") == 3
    assert declared_subject_count("There are two main subjects in this clip.") == 2
    assert declared_subject_count("There is a single subject.") == 1
    assert declared_subject_count("There are ten people in the video.") == 10
    assert declared_subject_count("A man juggles.") is None


# The cases of the two readers there used to be (caption_format's and qa_parsing's
# subject_count_from_caption): one reader must give every one of them. "a single subject" was
# None for the QA reader, so single-subject captions were asked the interaction question.
@pytest.mark.parametrize(
    ("caption", "count"),
    [
        ("There is 1 subject in the video.", 1),
        ("There are 3 subjects.", 3),
        ("There are 3 subjects: ...", 3),
        ("There are two subjects.", 2),
        ("There are two main subjects in this clip.", 2),
        ("There is a single subject.", 1),
        ("There is one person in the video.", 1),
        ("There are 2 people in the video.", 2),
        ("There are six persons.", 6),
        ("There are ten people in the video.", 10),
        ("A man juggles.", None),
        ("A man walks.", None),
    ],
)
def test_one_subject_count_reader_for_format_and_qa(caption: str, count: int | None) -> None:
    assert declared_subject_count(caption) == count


_P_MAN = ("The first subject is a man with short black hair, wearing a grey T-shirt, standing on the left. "
          "He raises his right arm and waves at the woman in the red dress. He then walks toward her.")  # fmt: skip
_P_WOMAN = ("The second subject is a woman with long brown hair, wearing a red dress, standing on the right. "
            "She turns to face the man in the grey T-shirt and smiles. She then hugs him with both arms.")  # fmt: skip
_P_CHILD = ("The third subject is a girl of about six with blonde pigtails, wearing a yellow raincoat. "
            "She jumps up and down and claps her hands twice.")  # fmt: skip

BAD_CAPTIONS = [
    ("count_mismatch", f"There are 2 subjects in the video.\n\n{_P_MAN}\n\n{_P_WOMAN}\n\n{_P_CHILD}",
     "count mismatch: declares 2 subjects, has 3 paragraphs"),
    ("missing_paragraph", f"There are 3 subjects in the video.\n\n{_P_MAN}\n\n{_P_WOMAN}",
     "missing paragraph: declares 3 subjects, has 2 paragraphs"),
    ("refusal", "I'm sorry, but I cannot describe the people in this video because it may show "
     "identifiable individuals. " * 3, "refusal: 'I'm sorry'"),
    ("audio_music", f"There are 2 subjects in the video.\n\n{_P_MAN} Upbeat music plays throughout.\n\n{_P_WOMAN}",
     "mentions audio: 'music'"),
    ("audio_hear", f"There are 2 subjects in the video.\n\n{_P_MAN} He can hear the crowd cheering.\n\n{_P_WOMAN}",
     "mentions audio: 'hear'"),
    ("quoted_speech", f"There are 2 subjects in the video.\n\n{_P_MAN} He says \"hello there\" to her.\n\n{_P_WOMAN}",
     "quotes speech: 'says \"hello there\"'"),
    ("frames", f"There are 2 subjects in the video.\n\n{_P_MAN} In the first frame he is already smiling.\n\n{_P_WOMAN}",
     "mentions frames: 'first frame'"),
    ("no_declaration", f"{_P_MAN}\n\n{_P_WOMAN}",
     "missing subject count: does not open with 'There is 1 subject' / 'There are N subjects'"),
    ("actions_first", "There is 1 subject in the video.\n\nHe runs across the court, jumps and dunks the ball "
     "with both hands. Then he lands and raises his fists. He is a tall man with short hair, wearing a "
     "white jersey and black shorts, and he smiles at the end.",
     "attributes not first in paragraph 1: first sentence has no appearance words"),
    ("no_actions", "There is 1 subject in the video.\n\nThe subject is a tall man in his forties with grey hair "
     "and a thick beard, wearing a navy suit, a white shirt and a red tie. His shoes are black and polished, "
     "and a silver watch is on his left wrist. The background is a plain white wall with a window.",
     "no actions after attributes in paragraph 1"),
    ("zero_subjects", "There are 0 subjects in the video. The scene shows an empty street with parked cars, "
     "trees and a few shop windows, and the light changes slowly as clouds move across the sky above the road.",
     "declares 0 subjects"),
]  # fmt: skip


@pytest.mark.parametrize(("caption", "reason"), [(c, r) for _, c, r in BAD_CAPTIONS], ids=[i for i, _, _ in BAD_CAPTIONS])
def test_broken_captions_are_dropped_with_a_specific_reason(caption: str, reason: str) -> None:
    decision = check_caption(caption, item_id="clip-x", min_words=20)
    assert decision.verdict == "dropped"
    assert decision.reason == reason, decision.detail["problems"]


def test_naming_another_subject_by_number_is_kept_and_counted() -> None:
    """The paper's own captions refer to another person as "Subject 2"."""
    decision = check_caption(f"There are 2 subjects in the video.\n\n{_P_MAN} He points at Subject 2.\n\n{_P_WOMAN}",
                             min_words=20)
    assert decision.verdict == "kept", decision.detail["problems"]
    assert decision.detail["numbered_references"] == 1


def test_length_bounds_drop_with_the_word_count_as_evidence() -> None:
    short = check_caption("There is 1 subject in the video. A man waves.", min_words=40)
    assert (short.verdict, short.metric, short.value, short.threshold) == ("dropped", "words", 10.0, 40.0)
    assert short.reason == "too short: 10 words < 40"
    long = check_caption(JUGGLING, max_words=50)
    assert long.reason.startswith("too long: ") and long.threshold == 50.0


def test_speaking_is_a_visible_action_and_frame_position_is_not_frame_talk() -> None:
    caption = JUGGLING.replace("and smiles.", "and speaks to someone on the left side of the frame with a smile.")
    assert check_caption(caption).verdict == "kept"


def test_all_problems_are_listed_not_only_the_first() -> None:
    caption = f"There are 3 subjects in the video.\n\n{_P_MAN} Loud music plays.\n\n{_P_WOMAN}"
    problems = check_caption(caption, min_words=10).detail["problems"]
    assert "mentions audio: 'music'" in problems
    assert "missing paragraph: declares 3 subjects, has 2 paragraphs" in problems


@pytest.mark.parametrize(
    "answer",
    [
        '{"score": 8, "reasons": ["clear structure", "detailed actions"]}',
        '```json\n{"score": 8, "reasons": ["clear structure", "detailed actions"]}\n```',
        'Here is my review:\n{"score": "8", "reasons": ["clear structure", "detailed actions"]}\nThanks.',
        '{"score": 8.0, "reasons": ["clear structure", "detailed actions"]}',
    ],
    ids=["bare", "fenced", "in_prose", "float"],
)
def test_judge_answers_in_several_shapes_parse_to_one_score(answer: str) -> None:
    assert parse_judge_score(answer) == JudgeScore(8, ["clear structure", "detailed actions"])


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ("The caption is good, 8/10.", "not a JSON object"),
        ('{"reasons": []}', "no 'score'"),
        ('{"score": 11, "reasons": []}', "integer 1-10"),
        ('{"score": 6.5, "reasons": []}', "integer 1-10"),
        ('{"score": "high", "reasons": []}', "not a number"),
        ('[{"score": 7}]', "not a JSON object"),
    ],
)
def test_unusable_judge_answers_raise_with_a_reason(answer: str, message: str) -> None:
    with pytest.raises(JudgeParseError, match=message):
        parse_judge_score(answer)


def test_judge_decision_keeps_at_threshold_and_drops_below() -> None:
    assert judge_decision("c1", JudgeScore(6, []), min_score=6).verdict == "kept"
    low = judge_decision("c2", JudgeScore(3, ["speculates about feelings"]), min_score=6)
    assert low.verdict == "dropped"
    assert low.reason == "low quality: judge_score=3 < 6: speculates about feelings"
    assert (low.metric, low.value, low.threshold) == ("judge_score", 3.0, 6.0)
