"""What the evaluated model and the judge are asked, and how their replies become verdicts.

Standard protocol (the paper, section 4.1): the clip and the question with lettered options,
greedy decoding, the reply read as an option (`extract_choice`). Caption protocol: the model
captions the clip; a judge answers each question from the caption alone and may say the caption
does not mention it, which counts as wrong and is recorded as a refusal.

Pure: prompt templates come in as text, replies as text; no I/O, no Dagster.
"""

from __future__ import annotations

from dataclasses import dataclass
from string import Template
from typing import Any, Mapping, Sequence

from haic_core.haicbench.lmms_eval_utils import LETTERS, extract_choice
from haic_core.json_text import json_value

# Verdicts of one QA. Only "correct" scores; the others are wrong for different reasons.
CORRECT, WRONG, REFUSED, UNPARSED, ERROR = "correct", "wrong", "refused", "unparsed", "error"
VERDICTS = (CORRECT, WRONG, REFUSED, UNPARSED, ERROR)
# Not a verdict yet: the question's call waits in a batch job (scored when the job is ingested).
PENDING = "pending"

# How a judge says the caption lacks the answer, beyond the phrase the prompt asks for.
_REFUSALS = ("not mentioned", "not mention", "does not mention", "doesn't mention", "not stated", "not specified",
             "cannot be determined", "can't be determined", "cannot determine", "not enough information",
             "no information", "unknown", "none of the above", "not described", "not provided")


def lettered_options(options: Sequence[str]) -> str:
    """"A. first\\nB. second ..." — the layout of LLaVA-1.5's multiple-choice prompts."""
    return "\n".join(f"{LETTERS[i]}. {option}" for i, option in enumerate(options))


def standard_prompt(template: str, question: str, options: Sequence[str]) -> str:
    return Template(template).substitute(question=question, options=lettered_options(options))


def judge_prompt(template: str, caption: str, question: str, options: Sequence[str]) -> str:
    return Template(template).substitute(caption=caption.strip(), question=question,
                                         options=lettered_options(options))


@dataclass(frozen=True)
class Reading:
    """What a reply says: the chosen option (0-based) or why there is none."""

    verdict: str  # correct | wrong | refused | unparsed
    predicted_index: int | None
    note: str = ""

    @property
    def predicted_letter(self) -> str | None:
        return None if self.predicted_index is None else LETTERS[self.predicted_index]


def _scored(index: int | None, answer_index: int, note: str = "") -> Reading:
    if index is None:
        return Reading(UNPARSED, None, note or "no option could be read from the reply")
    return Reading(CORRECT if index == answer_index else WRONG, index, note)


def read_standard_reply(reply: str, options: Sequence[str], answer_index: int) -> Reading:
    """The evaluated model's reply to a standard-protocol question."""
    return _scored(extract_choice(reply, list(options)), answer_index)


def is_refusal(text: str) -> bool:
    said = " ".join(str(text).lower().replace("\u2019", "'").split())
    return any(phrase in said for phrase in _REFUSALS)


def judge_answer_text(reply: str) -> str:
    """The judge's answer field: from its JSON object when it wrote one, else the reply itself."""
    try:
        value: Any = json_value(reply)
    except ValueError:
        return reply
    if isinstance(value, Mapping):
        for key in ("answer", "choice", "option"):
            if key in value:
                return str(value[key])
    return reply if not isinstance(value, str) else value


def read_judge_reply(reply: str, options: Sequence[str], answer_index: int) -> Reading:
    """The judge's reply in the caption protocol: a refusal ("not mentioned") counts as wrong and
    is recorded as one; an option is scored like a standard reply."""
    answer = judge_answer_text(reply)
    index = extract_choice(answer, list(options))
    if index is None and is_refusal(answer):
        return Reading(REFUSED, None, "the judge says the caption does not mention it")
    return _scored(index, answer_index)
