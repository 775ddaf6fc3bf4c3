"""lmms-eval task functions for HAICBench (the paper's standard protocol).

This file is copied verbatim as `utils.py` into the exported lmms-eval task folder, so it must
stand alone: standard library only, no haic_core imports.

Protocol: video + question + lettered options -> the model answers with a letter; accuracy per
category and on average (the mean of the five category accuracies). Action-sequence and count
questions have five options (A-E), the other categories four (A-D).
"""

from __future__ import annotations

import os
import re

LETTERS = "ABCDE"
CATEGORIES = ("interaction", "action_details", "action_sequence", "count", "attribute")
POST_PROMPT = "Answer with the option's letter from the given choices directly."
# Relative video paths in the data files are resolved against this directory.
VIDEO_ROOT_ENV = "HAICBENCH_VIDEO_ROOT"


class MissingClipError(FileNotFoundError):
    """A benchmark clip is not where the task looks for it."""


def video_root():
    """Where relative `video` paths resolve: HAICBENCH_VIDEO_ROOT, else the working directory (run
    lmms-eval from the export root, which holds videos/)."""
    return os.environ.get(VIDEO_ROOT_ENV) or os.getcwd()


def haicbench_doc_to_visual(doc):
    path = doc["video"]
    if not os.path.isabs(path):
        path = os.path.join(video_root(), path)
    if not os.path.exists(path):
        raise MissingClipError(
            f"HAICBench clip {doc.get('clip_id', '?')} (question {doc.get('qa_id', '?')}) not found at {path}. "
            f"Set {VIDEO_ROOT_ENV} to the folder that holds videos/<clip_id>.mp4 (the export root), or run "
            "lmms-eval from that folder.")
    return [path]


def haicbench_doc_to_text(doc, lmms_eval_specific_kwargs=None):
    kwargs = lmms_eval_specific_kwargs or {}
    pre_prompt = kwargs.get("pre_prompt", "")
    post_prompt = kwargs.get("post_prompt", POST_PROMPT)
    lines = [doc["question"]]
    lines += [f"{LETTERS[i]}. {option}" for i, option in enumerate(doc["options"])]
    return f"{pre_prompt}" + "\n".join(lines) + f"\n{post_prompt}"


def haicbench_doc_to_target(doc):
    return LETTERS[int(doc["answer_index"])]


# How models state a choice, tried in order. A letter counts only where it cannot be the English
# article: "A man waves" is a sentence, not option A, so an "A" followed by a lower-case word is
# never taken as a letter.
_BARE = r"(?i)^\s*[\(\[]?\s*([{letters}])\s*[\)\]]?\s*[.:]?\s*$"       # "B", "(b)", "B."
_LEADING = r"^\s*(?:[\(\[]\s*([{letters}])\s*[\)\]]|([{letters}])\s*[\).:\]])"  # "(B) he waves", "B. He waves"
_STATED = (r"(?i:answer|option|choice)\s*(?i:is|would be|:)?\s*[:\-]?\s*"
           r"[\(\[]?\s*([{letters}])\b(?![\w'])(?!\s+[a-z])")           # "The answer is B", "Answer: (C)"
_STANDALONE = r"(?<![\w'])([{letters}])(?![\w'])(?!\s+(?!and\b|or\b)[a-z])"  # "I think B"


def _normalized(text):
    return " ".join(re.sub(r"[^\w\s]", " ", str(text).lower()).split())


def extract_choice(response, options):
    """The 0-based option a model's answer picks, or None when it cannot be read.

    Accepts a bare letter ("B", "(B)", "B."), a leading letter ("B. He waves"), a stated one ("The
    answer is B"), the text of exactly one option, or a single standalone option letter anywhere.
    Two different standalone letters and no clearer statement is ambiguous: None.
    """
    n_options = len(options)
    letters = LETTERS[:n_options]
    text = str(response or "").strip()
    if not text:
        return None
    for pattern in (_BARE, _LEADING, _STATED):
        match = re.search(pattern.format(letters=letters), text)
        if match:
            return letters.index(next(g for g in match.groups() if g).upper())
    said = _normalized(text)
    exact = [i for i, option in enumerate(options) if _normalized(option) == said]
    if exact:
        return exact[0]
    # An option quoted inside a sentence; a short option ("2") only as a whole word, and only one.
    quoted = [i for i, option in enumerate(options)
              if _normalized(option) and re.search(rf"\b{re.escape(_normalized(option))}\b", said)]
    if len(quoted) == 1 and len(_normalized(options[quoted[0]])) > 2:
        return quoted[0]
    standalone = set(re.findall(_STANDALONE.format(letters=letters), text))
    if len(standalone) == 1:
        return letters.index(standalone.pop())
    return None


def extract_letter(response, n_options=5):
    """The option letter a model's answer picks (see `extract_choice`), or None."""
    index = extract_choice(response, [""] * n_options)
    return None if index is None else LETTERS[index]


def haicbench_process_results(doc, results):
    """One result dict per metric in the yaml's metric_list; each aggregation picks its own."""
    index = extract_choice(results[0] if results else "", list(doc["options"]))
    predicted = None if index is None else LETTERS[index]
    score = 1.0 if predicted == haicbench_doc_to_target(doc) else 0.0
    record = {"qa_id": doc["qa_id"], "category": doc["category"], "predicted": predicted, "score": score}
    metrics = {f"{category}_accuracy": record for category in CATEGORIES}
    metrics["average_accuracy"] = record
    return metrics


def _accuracy(records, category):
    scores = [r["score"] for r in records if r["category"] == category]
    return 100.0 * sum(scores) / len(scores) if scores else float("nan")


def haicbench_aggregate_interaction(results):
    return _accuracy(results, "interaction")


def haicbench_aggregate_action_details(results):
    return _accuracy(results, "action_details")


def haicbench_aggregate_action_sequence(results):
    return _accuracy(results, "action_sequence")


def haicbench_aggregate_count(results):
    return _accuracy(results, "count")


def haicbench_aggregate_attribute(results):
    return _accuracy(results, "attribute")


def haicbench_aggregate_average(results):
    """Mean of the per-category accuracies of the categories present (the paper's average)."""
    per_category = [_accuracy(results, c) for c in CATEGORIES]
    present = [a for a in per_category if a == a]
    return sum(present) / len(present) if present else float("nan")
