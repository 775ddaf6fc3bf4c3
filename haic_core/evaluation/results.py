"""Per-QA answers -> accuracy per category (`eval_results`) -> the leaderboard in the paper's layout.

The paper's tables put Avg. first, then Action Details, Action Sequence, Interaction, Count,
Attribute; Avg. is the mean of the five category accuracies. Its published rows (MISSION.md,
Tables 2 and 3) are shown beside ours as reference rows, never mixed into our numbers.

Pure: DataFrames in, DataFrames and text out.
"""

from __future__ import annotations

from typing import Sequence

import pandas as pd

from haic_core.evaluation.protocols import CORRECT, ERROR, PENDING, REFUSED, UNPARSED

# The paper's column order and labels.
PAPER_COLUMNS: tuple[tuple[str, str], ...] = (
    ("action_details", "Action Details"), ("action_sequence", "Action Sequence"), ("interaction", "Interaction"),
    ("count", "Count"), ("attribute", "Attribute"),
)
AVERAGE = "average"
ANSWER_COLUMNS = ["eval_model", "model", "provider", "protocol", "frames", "qa_set", "qa_id", "clip_id", "category",
                  "question", "options", "answer_index", "answer", "prompt", "reply", "caption", "judge_model",
                  "judge_reply", "predicted", "verdict", "note", "correct", "cached"]
RESULT_COLUMNS = ["eval_model", "model", "provider", "protocol", "frames", "qa_set", "category", "n", "correct",
                  "refused", "unparsed", "errors", "accuracy"]
SCORE_COLUMNS = ["Avg.", *[label for _, label in PAPER_COLUMNS]]
# Our rows' share of questions whose call failed (counted wrong in every score): a score with many
# is the endpoint's, not the model's. The paper's rows have none to show.
ERROR_SHARE = "Errors %"
LEADERBOARD_COLUMNS = ["model", "protocol", "frames", "source", *SCORE_COLUMNS, ERROR_SHARE]

# The paper's published accuracies (%), as MISSION.md gives them: Avg. then the five categories in
# PAPER_COLUMNS order. Frames in brackets where the paper gives them.
PAPER_CAPTION_ROWS: tuple[tuple[str, tuple[float, ...]], ...] = (
    ("Human-annotated captions", (96.7, 100.0, 94.3, 95.0, 95.3, 99.0)),
    ("Gemini-1.5-Pro", (41.0, 33.7, 30.4, 36.0, 46.0, 58.9)),
    ("GPT-4o [50]", (40.0, 37.8, 30.6, 35.8, 44.6, 51.4)),
    ("VideoLLaMA2-7B [64]", (21.0, 15.7, 18.9, 17.3, 28.9, 24.2)),
    ("LongVA-7B [64]", (19.3, 14.7, 13.8, 11.5, 36.0, 20.3)),
    ("InternVL2-8B [64]", (28.8, 31.0, 19.9, 21.5, 31.5, 40.2)),
    ("Qwen2VL-7B [64]", (27.0, 18.5, 22.1, 19.9, 35.7, 38.9)),
    ("LLaVA-Video-7B [64]", (29.2, 23.1, 15.8, 23.7, 35.0, 48.3)),
    ("LLaVA-Video-ActionPro-7B [64]", (35.2, 27.5, 16.9, 30.7, 44.2, 56.9)),
)
PAPER_STANDARD_ROWS: tuple[tuple[str, tuple[float, ...]], ...] = (
    ("Gemini-1.5-Pro", (67.0, 71.3, 52.1, 73.5, 56.7, 81.4)),
    ("GPT-4o [50]", (61.2, 69.9, 46.4, 61.6, 46.3, 81.8)),
    ("VideoLLaMA2-7B [64]", (51.4, 48.5, 38.8, 56.3, 47.0, 66.3)),
    ("LongVA-7B [64]", (56.9, 55.6, 41.8, 58.4, 52.1, 76.4)),
    ("InternVL2-8B [64]", (58.8, 64.2, 43.0, 59.7, 50.0, 76.9)),
    ("Qwen2VL-7B [64]", (62.5, 69.4, 44.7, 60.4, 57.5, 80.6)),
    ("LLaVA-Video-7B [64]", (62.0, 64.3, 43.0, 62.5, 56.8, 83.5)),
    ("LLaVA-Video-ActionPro-7B [64]", (64.2, 65.7, 45.0, 63.6, 61.3, 85.3)),
)
PAPER_ROWS = {"caption": PAPER_CAPTION_ROWS, "standard": PAPER_STANDARD_ROWS}


def results_table(answers: pd.DataFrame) -> pd.DataFrame:
    """One row per (evaluated model, category) and one `average` row: n, correct, refused,
    unparsed, errors, accuracy (%). The average is the mean of the category accuracies."""
    keys = ["eval_model", "model", "provider", "protocol", "frames", "qa_set"]
    rows = []
    for identity, group in answers.groupby(keys, sort=True, dropna=False):
        per_category = []
        for category, _ in PAPER_COLUMNS:
            of = group[group["category"] == category]
            if of.empty:
                continue
            row = dict(zip(keys, identity)) | _counts(of) | {"category": category}
            per_category.append(row)
        rows += per_category
        if per_category:
            average = dict(zip(keys, identity)) | _counts(group) | {"category": AVERAGE}
            average["accuracy"] = sum(r["accuracy"] for r in per_category) / len(per_category)
            rows.append(average)
    return pd.DataFrame(rows, columns=RESULT_COLUMNS)


def _counts(of: pd.DataFrame) -> dict[str, float | int]:
    n = len(of)
    correct = int((of["verdict"] == CORRECT).sum())
    return {"n": n, "correct": correct, "refused": int((of["verdict"] == REFUSED).sum()),
            "unparsed": int((of["verdict"] == UNPARSED).sum()), "errors": int((of["verdict"] == ERROR).sum()),
            "accuracy": 100.0 * correct / n if n else float("nan")}


def leaderboard(results: pd.DataFrame, *, with_reference: bool = True,
                protocols: Sequence[str] = ("standard", "caption")) -> pd.DataFrame:
    """Our rows (one per evaluated model) then, per protocol, the paper's rows marked
    `source = "paper (reference)"`. A category we did not evaluate stays empty (NaN)."""
    rows = []
    for protocol in protocols:
        ours = results[results["protocol"] == protocol]
        for (eval_model, model, frames), group in ours.groupby(["eval_model", "model", "frames"], sort=True):
            by_category = dict(zip(group["category"], group["accuracy"]))
            row = {"model": model, "protocol": protocol, "frames": int(frames), "source": f"ours ({eval_model})",
                   "Avg.": by_category.get(AVERAGE, float("nan"))}
            row |= {label: by_category.get(category, float("nan")) for category, label in PAPER_COLUMNS}
            row[ERROR_SHARE] = error_share_pct(group)
            rows.append(row)
        if with_reference:
            for name, values in PAPER_ROWS[protocol]:
                rows.append({"model": name, "protocol": protocol, "frames": None, "source": "paper (reference)",
                             **dict(zip(SCORE_COLUMNS, values)), ERROR_SHARE: float("nan")})
    return pd.DataFrame(rows, columns=LEADERBOARD_COLUMNS)


def error_share_pct(results: pd.DataFrame) -> float:
    """% of one evaluated model's questions in error, from its results rows (the average row's
    counts; NaN when there is none, as in results written before they had counts)."""
    average = results[results["category"] == AVERAGE]
    if average.empty or "errors" not in average or "n" not in average or pd.isna(average["n"].iloc[0]):
        return float("nan")
    n = float(average["n"].iloc[0])
    return 100.0 * float(average["errors"].iloc[0]) / n if n else float("nan")


def error_share(answers: pd.DataFrame) -> float:
    """The share (0-1) of answered questions whose verdict is `error` (pending ones are not answered yet)."""
    answered = answers[answers["verdict"] != PENDING]
    return float((answered["verdict"] == ERROR).mean()) if len(answered) else 0.0


def error_summary(answers: pd.DataFrame) -> str:
    """The failed questions grouped by why, in one line: "56 of 200 questions in error (28.0 %):
    server_error 40 (e.g. ...), malformed_response 16 (e.g. ...)"; "" when none failed."""
    failed = answers[answers["verdict"] == ERROR]
    if failed.empty:
        return ""
    kinds = failed["note"].map(failure_kind)
    groups = []
    for kind, count in kinds.value_counts().items():
        example = failed.loc[kinds == kind, "note"].iloc[0]
        groups.append(f"{kind} {count} (e.g. {_shortened(example)!r})")
    share = 100.0 * len(failed) / len(answers)
    return f"{len(failed)} of {len(answers)} questions in error ({share:.1f} %): {', '.join(groups)}"


def failure_kind(note: str) -> str:
    """The kind of a failed question's note: "server_error: HTTP 500 ..." -> server_error, "no caption:
    timeout: ..." -> "no caption (timeout)", "judge rate_limited: ..." -> "judge rate_limited",
    "clip video not found for c1" -> "clip video not found"."""
    note = str(note or "")
    if note.startswith("clip video not found"):
        return "clip video not found"
    if note.startswith("no caption: "):
        return f"no caption ({note[len('no caption: '):].split(':', 1)[0].strip()})"
    return note.split(":", 1)[0].strip() or "unknown"


def _shortened(text: str, limit: int = 80) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def leaderboard_text(board: pd.DataFrame) -> str:
    """The leaderboard as a fixed-width text table, for a terminal."""
    shown = board.copy()
    for column in LEADERBOARD_COLUMNS[4:]:
        shown[column] = [("–" if pd.isna(v) else f"{v:.1f}") for v in shown[column]]
    shown["frames"] = ["" if pd.isna(v) else str(int(v)) for v in shown["frames"]]
    return shown.to_string(index=False)


def leaderboard_markdown(board: pd.DataFrame) -> str:
    lines = ["| " + " | ".join(LEADERBOARD_COLUMNS) + " |", "|" + "---|" * len(LEADERBOARD_COLUMNS)]
    for row in board.itertuples(index=False):
        cells = []
        for column, value in zip(LEADERBOARD_COLUMNS, row):
            if column in LEADERBOARD_COLUMNS[4:]:
                cells.append("–" if pd.isna(value) else f"{value:.1f}")
            elif column == "frames":
                cells.append("" if value is None or pd.isna(value) else str(int(value)))
            else:
                cells.append(str(value))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
