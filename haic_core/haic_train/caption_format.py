"""Rule-based judgement of a machine caption against HAIC's standardized format.

The format (the paper, section 2): the caption opens with the number of main characters ("There is 1
subject ..." / "There are N subjects ..."), then one paragraph per main character that gives
static attributes first and actions after, in order; nothing invisible, no audio, no "frames".

`check_caption` returns a `Decision` whose `reason` names the first rule broken, specifically
("count mismatch: declares 2 subjects, has 3 paragraphs", "mentions audio: 'music'"); every
problem found is listed in `detail["problems"]`. Pure functions, no I/O.

Heuristics, and why they are what they are:

* Paragraphs are blocks separated by line breaks. If the declaration sentence is a paragraph
  of its own it is a header; otherwise it is cut off the first paragraph and the rest of that
  paragraph is the first subject's. Both layouts occur in LLM output.
* "Attributes before actions": the first sentence of each subject paragraph must contain an
  appearance word (man, woman, hair, wearing, shirt, years old, ...), and some later sentence
  must contain an action (a lexicon of body-movement verb stems in any form, or a
  pronoun/"the man" followed by a verb in -s/-ed or "is ...-ing"). This catches a paragraph
  that starts with what a person does, or that never says what they do, without parsing English.
* Audio means the sound track: "the audio", "music plays", "we hear", "the sound of", a
  soundtrack or narration. A loud action is visible ("screams loudly", "shouts", "laughs",
  "speaks": a mouth opens, a jaw moves) and is kept; what is rejected besides is the *content*
  of speech, i.e. quoted words after a speech verb (`says "hello"`), because that needs the
  audio track.
* Openings and references as the paper's own captions write them: "There is 1 subject in the
  video" (with or without a period), "There are two main subjects in the video.", "The main
  characters are two people.", "The main character is one person."; paragraphs that open "The
  first subject is", "The first is", "This person is"; another person named "Subject 2"
  (counted in `detail["numbered_references"]`, not rejected); actions in any tense or form.
* Frames: "frames" and frame-indexing phrases ("in the first frame", "frame 12") talk about
  the video as images and are rejected; "the left side of the frame" (a position) is kept.
* Refusals ("I'm sorry", "I cannot", "As an AI", ...) anywhere are rejected: a caption never
  speaks in the first person.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from haic_core.decisions import Decision, dropped, kept
from haic_core.json_text import json_value

# Paper does not give bounds; ours: a one-subject caption in the format needs ~40 words, and
# anything past 600 words is usually a model looping. Both are settings.
DEFAULT_MIN_WORDS = 40
DEFAULT_MAX_WORDS = 600

NUMBER_WORDS = {
    "one": 1, "a single": 1, "a": 1, "two": 2, "three": 3, "four": 4, "five": 5,
    "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
}  # fmt: skip


def _whole_words(alternatives: str) -> re.Pattern[str]:
    """Case-insensitive search for any of the `|`-separated words or phrases, as whole words."""
    return re.compile(rf"\b(?:{alternatives})\b", re.IGNORECASE)


_NUMBER = r"(\d+|a single|one|two|three|four|five|six|seven|eight|nine|ten|a)"
_PEOPLE = r"(?:main\s+)?(?:subjects?|characters?|people|persons?|individuals?)"
# The openings the paper's captions really use: "There is 1 subject in the video" (with or without
# a period), "There are two main subjects in the video.", "The main characters are two people.",
# "The main character is one person."
DECLARATION = re.compile(
    rf"^\s*(?:there\s+(?:is|are)\s+{_NUMBER}\s+{_PEOPLE}\b"
    rf"|the\s+main\s+(?:characters?|subjects?)\s+(?:is|are)\s+{_NUMBER}\s+{_PEOPLE}\b)[^.!?\n]*[.!?]?",
    re.IGNORECASE,
)

REFUSAL = _whole_words(
    r"I'm sorry|I am sorry|I apologi[sz]e|I cannot|I can't|I can not|I am unable|"
    r"I'm unable|I'm not able|I am not able|As an AI|as a language model|I do not have the ability",
)

# The sound track, not a loud action: "screams loudly" and "shouts" are visible (a mouth wide
# open), "music plays", "we hear" and "the sound of" are not.
AUDIO_WORDS = _whole_words(
    r"(?:the\s+)?audio|audible|inaudible|soundtrack|sound\s+track|sound\s+effects?|(?:the\s+)?sounds?\s+of|"
    r"music(?:al)?|melody|lyrics|voice-?over|narrat(?:ion|or)|"
    r"hear(?:s|d|ing)?|(?:can\s+be|is|are)\s+heard",
)
QUOTED_SPEECH = re.compile(
    r"\b(?:says?|said|saying|tells?|told|asks?|asked|shouts?|shouted|yells?|yelled|"
    r"exclaims?|exclaimed|replies|replied|whispers?)\b[^.!?\n]{0,20}?[\"“'‘]\w[^\"”'’\n]{0,80}[\"”'’]",
    re.IGNORECASE,
)
FRAME_TALK = _whole_words(
    r"frames|(?:first|second|last|final|initial|opening|next|previous|this|that|each|every|"
    r"later|earlier|subsequent)\s+frame|frame\s+\d+|frame-by-frame",
)
NUMBERED_SUBJECT = re.compile(r"\b(?:subject|person|character)\s*#?\s*\d+\b", re.IGNORECASE)

APPEARANCE = _whole_words(
    r"man|woman|men|women|boy|girl|child|kid|toddler|baby|teen(?:ager)?|person|lady|guy|"
    r"gentleman|male|female|adult|elderly|old|young|middle-aged|aged|years? old|twenties|"
    r"thirties|forties|fifties|sixties|hair(?:ed)?|bald|beard(?:ed)?|mustache|moustache|"
    r"skin(?:ned)?|complexion|face|eyes|glasses|sunglasses|wear(?:s|ing)?|dressed|clothing|"
    r"clothes|outfit|uniform|shirt|t-shirt|jacket|coat|hoodie|sweater|top|dress|skirt|"
    r"pants|trousers|jeans|shorts|shoes|sneakers|boots|hat|cap|helmet|scarf|gloves|"
    r"tall|short|slim|slender|stocky|build|sleeves?|sleeveless|infant|player|athlete|dancer|"
    r"blonde?|brunette|redhead|ponytail|braids?|curly|beige|costume|apron|vest|suit|jersey",
)
# Action verbs in any form: a stem followed by any ending (walks, walked, walking; runs, running),
# short stems that begin other words spelled out, and the common irregular past forms.
_ACTION_STEMS = (
    "walk|run|jump|turn|rais|lift|lower|mov|look|glanc|smil|nod|shak|hold|pick|plac|throw|toss|catch|"
    "kick|swing|danc|stand|step|bend|lean|reach|grab|grip|push|pull|clap|hug|touch|rub|"
    "open|clos|drink|eat|play|juggl|spin|rotat|tilt|extend|stretch|crouch|kneel|climb|driv|carr|"
    "slid|fall|speak|talk|sing|laugh|frown|blink|appl|brush|wip|pour|bounc|dribbl|"
    "shoot|wrestl|strik|punch|adjust|gestur|approach|continu|begin|start|stop|return|follow|"
    "chas|giv|tak|shift|sway|swap|switch|twist|flip|scream|shout|yell|wiggl|"
    "crawl|grasp|wrap|swim|hop|skip|lung|squat|dodg|tackl|shrug|wink|fidget|chew"
)
# Words that are also nouns or adjectives of appearance (a watch, her face, wavy hair, a sit-down
# desk): counted only with a verb ending.
_AMBIGUOUS_STEMS = "watch|fac|star|land|rid|sit|cross|block|point|drop|roll|fold|wav|press|kiss|pass|cr[iy]|sip|bit"
ACTION_VERBS = re.compile(
    rf"\b(?:(?:{_ACTION_STEMS})\w*|(?:{_AMBIGUOUS_STEMS})(?:e?s|e?d|ing|ting|ping|ted|ped|ies|ied)|"
    r"hits?|hitting|puts?|putting|cuts?|cutting|pats?|patted|patting|taps?|tapped|"
    r"tapping|bobs?|bobbing|pins?|pinned|hands?\s+(?:it|the|her|him|them|over)|ran|sat|stood|threw|caught|held|"
    r"took|gave|fell|rode|drove|shook|spun|swung|began|kept|knelt|lay|lies|lying|ate|drank|sang|spoke|"
    r"went|goes|came|comes|got|gets)\b",
    re.IGNORECASE,
)
# "He then drifts", "the woman slowly exited", "she is smiling": a subject followed (maybe via an
# adverb) by a verb in -s or -ed, or a form of "be" with an -ing verb. "is"/"has"/"was" alone and
# appearance verbs do not count.
PRONOUN_VERB = re.compile(
    r"\b(?:he|she|they|the (?:man|woman|boy|girl|child|person|baby))\s+(?:\w+ly\s+|then\s+|also\s+|again\s+)?"
    r"(?:(?!is\b|has\b|was\b|wears\b|appears\b|seems\b|looks like\b)([a-z]+(?:es|s|ed))\b"
    r"|(?:is|are|was|were)\s+(?:\w+ly\s+)?(?!wearing\b|dressed\b)[a-z]+ing\b)",
    re.IGNORECASE,
)
_SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"“])")


@dataclass(frozen=True)
class CaptionStructure:
    """What the caption declares and how it is laid out (before any rule is applied)."""

    declared_subjects: int | None
    subject_paragraphs: list[str] = field(default_factory=list)
    words: int = 0


def count_words(text: str) -> int:
    return len(text.split())


def split_sentences(paragraph: str) -> list[str]:
    return [s for s in _SENTENCE_SPLIT.split(paragraph.strip()) if s]


def declared_subject_count(text: str) -> int | None:
    """N from "There is/are N subjects" at the caption's start (digits, one..ten, "a single",
    "a"), else None. The project's one subject-count reader: the format check, the training
    export and HAICBench's single-subject rule must all read the same count."""
    match = DECLARATION.match(text)
    if not match:
        return None
    token = next(g for g in match.groups() if g).lower()
    return int(token) if token.isdigit() else NUMBER_WORDS[token]


def parse_structure(text: str) -> CaptionStructure:
    """Split a caption into its declaration and its subject paragraphs."""
    stripped = text.strip()
    declared = declared_subject_count(stripped)
    paragraphs = [p.strip() for p in re.split(r"\n\s*", stripped) if p.strip()]
    if declared is not None and paragraphs:
        match = DECLARATION.match(paragraphs[0])
        rest = paragraphs[0][match.end() :].strip() if match else paragraphs[0]
        paragraphs = ([rest] if rest else []) + paragraphs[1:]
    return CaptionStructure(declared, paragraphs, count_words(stripped))


def _has_action(sentence: str) -> bool:
    return bool(ACTION_VERBS.search(sentence) or PRONOUN_VERB.search(sentence))


def _quote(match: re.Match[str]) -> str:
    return match.group(0).strip()


def find_problems(
    text: str,
    *,
    min_words: int = DEFAULT_MIN_WORDS,
    max_words: int = DEFAULT_MAX_WORDS,
) -> tuple[list[str], CaptionStructure]:
    """Every rule the caption breaks, most fundamental first, as specific reasons."""
    problems: list[str] = []
    structure = parse_structure(text)
    if not text.strip():
        return ["empty caption"], structure
    if refusal := REFUSAL.search(text):
        problems.append(f"refusal: '{_quote(refusal)}'")
    if structure.words < min_words:
        problems.append(f"too short: {structure.words} words < {min_words}")
    if structure.words > max_words:
        problems.append(f"too long: {structure.words} words > {max_words}")
    if structure.declared_subjects is None:
        problems.append("missing subject count: does not open with 'There is 1 subject' / 'There are N subjects'")
    if audio := AUDIO_WORDS.search(text):
        problems.append(f"mentions audio: '{_quote(audio).lower()}'")
    if speech := QUOTED_SPEECH.search(text):
        problems.append(f"quotes speech: '{_quote(speech)}'")
    if frames := FRAME_TALK.search(text):
        problems.append(f"mentions frames: '{_quote(frames).lower()}'")

    declared = structure.declared_subjects
    found = len(structure.subject_paragraphs)
    if declared is not None:
        if declared == 0:
            problems.append("declares 0 subjects")
        elif found < declared:
            problems.append(f"missing paragraph: declares {declared} subjects, has {found} paragraphs")
        elif found > declared:
            problems.append(f"count mismatch: declares {declared} subjects, has {found} paragraphs")
    for number, paragraph in enumerate(structure.subject_paragraphs, start=1):
        sentences = split_sentences(paragraph)
        if not APPEARANCE.search(sentences[0]):
            problems.append(
                f"attributes not first in paragraph {number}: first sentence has no appearance words"
            )
        if not any(_has_action(s) for s in sentences[1:]):
            problems.append(f"no actions after attributes in paragraph {number}")
    return problems, structure


def check_caption(
    text: str,
    *,
    item_id: str = "caption",
    min_words: int = DEFAULT_MIN_WORDS,
    max_words: int = DEFAULT_MAX_WORDS,
    parent_id: str | None = None,
) -> Decision:
    """Kept if the caption follows the standardized format, else dropped with the first
    problem as the reason (all problems in `detail['problems']`).

    The deciding measurement is the subject paragraph count against the declared count
    (`metric='subject_paragraphs'`), or the word count when length is what failed.
    """
    problems, structure = find_problems(text, min_words=min_words, max_words=max_words)
    detail: dict[str, Any] = {
        "problems": problems,
        "declared_subjects": structure.declared_subjects,
        "subject_paragraphs": len(structure.subject_paragraphs),
        "words": structure.words,
        # The paper's own captions refer to another person as "Subject 2": counted, not rejected.
        "numbered_references": len(NUMBERED_SUBJECT.findall(text)),
    }
    common: dict[str, Any] = {"item_kind": "caption", "parent_id": parent_id, "detail": detail}
    if problems and problems[0].startswith(("too short", "too long")):
        bound = min_words if problems[0].startswith("too short") else max_words
        return dropped(item_id, problems[0], metric="words", value=float(structure.words),
                       threshold=float(bound), **common)  # fmt: skip
    measurement: dict[str, Any] = {"metric": "subject_paragraphs", "value": float(len(structure.subject_paragraphs))}
    if structure.declared_subjects is not None:
        measurement["threshold"] = float(structure.declared_subjects)
    if problems:
        return dropped(item_id, problems[0], **measurement, **common)
    return kept(item_id, "follows the standardized format", **measurement, **common)


# ----------------------------------------------------------------------------------------------
# The LLM judge's answer
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class JudgeScore:
    score: int
    reasons: list[str]


class JudgeParseError(ValueError):
    """The judge's answer is not a JSON object with an integer score 1-10."""


def parse_judge_score(text: str) -> JudgeScore:
    """{"score": 1-10, "reasons": [...]} from the judge's answer.

    Accepts a bare object, one in a code fence (```json or another tag) or in prose, read by
    `haic_core.json_text`; a score given as "7" or 7.0 is accepted, anything else raises
    `JudgeParseError` with the reason.
    """
    try:
        data: Any = json_value(text)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise JudgeParseError(f"judge answer is not a JSON object: {text.strip()[:80]!r}")
    if "score" not in data:
        raise JudgeParseError("judge answer has no 'score'")
    raw = data["score"]
    try:
        score_float = float(raw)
    except (TypeError, ValueError):
        raise JudgeParseError(f"judge score is not a number: {raw!r}") from None
    if isinstance(raw, bool) or score_float != int(score_float) or not 1 <= score_float <= 10:
        raise JudgeParseError(f"judge score must be an integer 1-10, got {raw!r}")
    reasons = data.get("reasons", [])
    if isinstance(reasons, str):
        reasons = [reasons]
    if not isinstance(reasons, list):
        raise JudgeParseError("judge 'reasons' is not a list")
    return JudgeScore(int(score_float), [str(r) for r in reasons])


DEFAULT_MIN_JUDGE_SCORE = 6


def judge_decision(
    item_id: str,
    judge: JudgeScore,
    *,
    min_score: int = DEFAULT_MIN_JUDGE_SCORE,
    parent_id: str | None = None,
) -> Decision:
    """Kept when the judge's score reaches `min_score` (our default 6; the paper gives none)."""
    common: dict[str, Any] = {
        "item_kind": "caption",
        "parent_id": parent_id,
        "metric": "judge_score",
        "value": float(judge.score),
        "threshold": float(min_score),
        "detail": {"judge_reasons": judge.reasons},
    }
    if judge.score >= min_score:
        return kept(item_id, f"judge_score={judge.score} >= {min_score}", **common)
    first = f": {judge.reasons[0]}" if judge.reasons else ""
    return dropped(item_id, f"low quality: judge_score={judge.score} < {min_score}{first}", **common)
