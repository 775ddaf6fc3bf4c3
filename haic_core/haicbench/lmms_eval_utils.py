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


def haicbench_doc_to_visual(doc):
    path = doc["video"]
    root = os.environ.get(VIDEO_ROOT_ENV, "")
    if root and not os.path.isabs(path):
        path = os.path.join(root, path)
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


# Tried in order: a bare leading letter ("B", "(B) ...", "B. ..."), "answer is B", then the first
# standalone capital letter among the doc's option letters.
_LEADING = r"^\s*[\(\[]?\s*([{letters}])\s*(?:[\)\].:,]|\s|$)"
_STATED = r"answer\s*(?:is|:)?\s*[\(\[]?\s*([{letters}])\b"
_ANYWHERE = r"\b([{letters}])\b"


def extract_letter(response, n_options=5):
    """The first option letter in a model's answer, or None."""
    letters = LETTERS[:n_options]
    text = str(response or "")
    for pattern, flags in ((_LEADING, 0), (_STATED, re.I), (_ANYWHERE, 0)):
        match = re.search(pattern.format(letters=letters), text, flags)
        if match:
            return match.group(1).upper()
    return None


def haicbench_process_results(doc, results):
    """One result dict per metric in the yaml's metric_list; each aggregation picks its own."""
    predicted = extract_letter(results[0] if results else "", len(doc["options"]))
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
