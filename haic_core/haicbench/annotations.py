"""HAICBench annotation batches: what their files are called, and what their bytes mean.

A batch is a folder `<batch>/` of the annotations store holding
- `captions.jsonl` or `captions.csv`: the human captions (clip_id, caption, writer, checkers;
  optional video_id; optional checks, each {checker, decision approve|correct|reject, note}, as the
  annotation tool writes them), checked here against the standardized format;
- `qa_raw/<clip_id>__<category>.txt` (optional): raw QA answers an LLM produced elsewhere, with
  an optional `qa_raw/provenance.json` naming the model and prompt version;
- `reviews.csv`: the reviewers' decisions on the batch's QA;
- `clip_checks.csv` (optional): the manual check of the task's clips (annotation_tasks.py).

The caller reads the bytes (from a local folder or S3); these functions parse them.
Pure: no I/O, no Dagster.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import replace
from typing import Any

import pandas as pd

from haic_core.accumulation.scenes import video_id_of_clip_id
from haic_core.decisions import Decision, dropped
from haic_core.haicbench.annotation_tasks import not_in_task, sign_off_decision
from haic_core.haic_train.caption_format import check_caption, declared_subject_count
from haic_core.haicbench.qa_generation import RawAnswer
from haic_core.haicbench.qa_verification import Review, reviews_from_records

CAPTION_FILES = ("captions.jsonl", "captions.csv")  # the JSONL export is preferred when both exist
RAW_ANSWERS_FOLDER = "qa_raw"
RAW_ANSWERS_PROVENANCE = f"{RAW_ANSWERS_FOLDER}/provenance.json"
REVIEWS_FILE = "reviews.csv"
# Model and prompt version of imported answers whose provenance the batch does not name.
IMPORTED = "imported"
BENCH_CAPTION_COLUMNS = ["clip_id", "video_id", "video_id_source", "caption", "writer", "checkers", "subject_count"]


def files_by_batch(keys: Iterable[str]) -> dict[str, set[str]]:
    """batch -> the paths of its files inside the batch folder, from the store's keys
    (`<batch>/captions.jsonl`, `<batch>/qa_raw/x.txt`); keys outside a batch folder are ignored."""
    batches: dict[str, set[str]] = {}
    for key in keys:
        batch, slash, name = key.partition("/")
        if slash and name:
            batches.setdefault(batch, set()).add(name)
    return batches


def caption_file(batch_files: Collection[str]) -> str | None:
    """The batch's caption export among its files, or None when it has none yet."""
    return next((name for name in CAPTION_FILES if name in batch_files), None)


def has_raw_answers(batch_files: Collection[str]) -> bool:
    return any(name.startswith(f"{RAW_ANSWERS_FOLDER}/") for name in batch_files)


def raw_answer_files(batch_files: Collection[str]) -> list[str]:
    """The names of the raw answer files in qa_raw/ (`*.txt`, not in subfolders), in name order."""
    prefix = f"{RAW_ANSWERS_FOLDER}/"
    names = (path[len(prefix):] for path in batch_files if path.startswith(prefix))
    return sorted(name for name in names if "/" not in name and name.endswith(".txt"))


def imported_provenance(provenance_json: bytes | None) -> tuple[str, str]:
    """(model, prompt version) of the batch's raw answers: the files carry no provenance of
    their own, so qa_raw/provenance.json ({"model": ..., "prompt_version": ...}) names it for
    all of them, else both are 'imported'."""
    provenance = json.loads(provenance_json) if provenance_json is not None else {}
    return str(provenance.get("model") or IMPORTED), str(provenance.get("prompt_version") or IMPORTED)


def imported_answers(files: Mapping[str, bytes], *, model: str, prompt_version: str, clip_ids: Collection[str],
                     categories: Collection[str]) -> tuple[dict[tuple[str, str], RawAnswer], list[str]]:
    """(answers by (clip_id, category), names of the files that answer no kept caption or no
    asked category) from the raw answer files `<clip_id>__<category>.txt` (name -> bytes)."""
    answers, orphans = {}, []
    for name, data in files.items():
        clip_id, _, category = name.removesuffix(".txt").rpartition("__")
        if clip_id not in clip_ids or category not in categories:
            orphans.append(name)
            continue
        # Newlines as a text-mode read gives them, whichever system wrote the file.
        text = data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
        answers[(clip_id, category)] = RawAnswer(text, model, prompt_version)
    return answers, orphans


def read_caption_export(file_name: str, data: bytes) -> pd.DataFrame:
    """The caption export's rows; `file_name` (one of CAPTION_FILES) says its format."""
    if file_name.endswith(".jsonl"):
        return pd.read_json(io.BytesIO(data), lines=True, dtype=False)
    return pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)


def read_reviews(data: bytes) -> list[Review]:
    """The review sheet's reviews (see `reviews_from_records` for its columns); a malformed row
    raises ValueError or KeyError."""
    return reviews_from_records(pd.read_csv(io.BytesIO(data), dtype=str).to_dict("records"))


def checkers_list(value) -> list[str]:
    """Checkers as a list, from a JSON list, a list, or 'a;b;c' / 'a,b,c' text."""
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    if value is None or (isinstance(value, float) and value != value):
        return []
    text = str(value).strip()
    if text.startswith("["):
        return [str(v) for v in json.loads(text)]
    return [part.strip() for part in re.split(r"[;,|]", text) if part.strip()]


def checks_list(value) -> list[dict[str, str]]:
    """A caption's checks ({checker, decision, note}) from a list or its JSON text; none when absent."""
    if isinstance(value, str):
        value = json.loads(value) if value.strip() else []
    if not isinstance(value, (list, tuple)):
        return []
    return [{"checker": str(c.get("checker") or "").strip(), "decision": str(c.get("decision") or "").strip(),
             "note": str(c.get("note") or "").strip()} for c in value]


def _rejection(clip_id: str, checks: list[dict[str, str]], parent_id: str) -> Decision | None:
    """A dropped decision naming who rejected the caption and why, when a checker rejected it."""
    rejecting = [c for c in checks if c["decision"] == "reject"]
    if not rejecting:
        return None
    why = "; ".join(f"{c['checker']}: {c['note'] or 'no reason given'}" for c in rejecting)
    return dropped(clip_id, f"rejected by checker {why}", item_kind="caption", parent_id=parent_id,
                   code="rejected_by_checker", detail={"checks": checks})


def _with_sign_offs(decision: Decision, writer: str, checkers: list[str], checks: list[dict[str, str]]) -> Decision:
    """A kept caption's decision naming its sign-offs, and the checkers who corrected it with why."""
    signed = [c for c in dict.fromkeys(c.strip() for c in checkers) if c and c != writer.strip()]
    reason = f"{decision.reason}; written by {writer.strip()}, checked by {', '.join(signed)}"
    corrections = [c for c in checks if c["decision"] == "correct"]
    if corrections:
        reason += "; corrected by " + "; ".join(f"{c['checker']} ({c['note'] or 'no reason given'})"
                                                for c in corrections)
    return replace(decision, reason=reason, detail={**decision.detail, "writer": writer.strip(), "checkers": signed,
                                                    **({"checks": checks} if checks else {})})


def video_id_of(row: Mapping[str, Any]) -> tuple[str, str]:
    """(video_id, where it came from): the export's video_id, our scene-split clip id pattern,
    or the clip itself standing for its video (one clip per video: the leakage check then
    guards the clip id only)."""
    given = row.get("video_id")
    if given is not None and str(given).strip() and str(given) != "nan":
        return str(given).strip(), "annotation"
    video_id = video_id_of_clip_id(row["clip_id"])
    if video_id is not None:
        return video_id, "clip_id pattern"
    return row["clip_id"], "clip_id (no video id given)"


def bench_caption_table(export: pd.DataFrame, *, batch: str, min_words: int, max_words: int,
                        task_clips: Mapping[str, str] | None = None, writers_required: int = 0,
                        checkers_required: int = 0,
                        rejected: Mapping[str, str] | None = None) -> tuple[pd.DataFrame, list[Decision]]:
    """The export's captions that pass the standardized-format check (BENCH_CAPTION_COLUMNS),
    and a decision per row: kept, or dropped for a missing or repeated clip id, missing sign-offs
    or a format rule. With `task_clips` (clip id -> video id of the batch's annotation task) a
    caption naming any other clip is an error row, and the video id is the task's; a caption of a
    clip the manual check rejected (`rejected`: clip id -> why) is dropped. Raises
    ValueError when the export lacks the clip_id or caption column."""
    missing = [c for c in ("clip_id", "caption") if c not in export.columns]
    if missing:
        raise ValueError(f"caption export of batch {batch!r} lacks columns {missing}")
    rows, decisions, seen = [], [], {}
    for number, row in enumerate(export.to_dict("records"), start=1):
        clip_id = str(row.get("clip_id") or "").strip()
        if not clip_id:
            decisions.append(dropped(f"{batch}#row{number}", "missing clip_id", item_kind="caption"))
            continue
        row["clip_id"] = clip_id
        if task_clips is not None and clip_id not in task_clips:
            decisions.append(not_in_task(clip_id, batch, len(task_clips)))
            continue
        video_id, video_id_source = ((task_clips[clip_id], "annotation task") if task_clips is not None
                                     else video_id_of(row))
        if clip_id in seen:
            decisions.append(dropped(clip_id, f"duplicate clip_id (row {seen[clip_id]})", item_kind="caption",
                                     parent_id=video_id))
            continue
        seen[clip_id] = number
        if rejected and clip_id in rejected:
            decisions.append(dropped(clip_id, rejected[clip_id], item_kind="caption", parent_id=video_id))
            continue
        writer, checkers = str(row.get("writer") or ""), checkers_list(row.get("checkers"))
        checks = checks_list(row.get("checks"))
        rejection = _rejection(clip_id, checks, video_id)
        if rejection is not None:
            decisions.append(rejection)
            continue
        unsigned = sign_off_decision(clip_id, writer, checkers, writers_required=writers_required,
                                     checkers_required=checkers_required, parent_id=video_id)
        if unsigned is not None:
            decisions.append(unsigned)
            continue
        caption = str(row.get("caption") or "")
        decision = check_caption(caption, item_id=clip_id, parent_id=video_id, min_words=min_words,
                                 max_words=max_words)
        if decision.verdict == "kept" and writer.strip():
            decision = _with_sign_offs(decision, writer, checkers, checks)
        decisions.append(decision)
        if decision.verdict != "kept":
            continue
        rows.append({"clip_id": clip_id, "video_id": video_id, "video_id_source": video_id_source, "caption": caption,
                     "writer": writer, "checkers": checkers,
                     "subject_count": declared_subject_count(caption)})
    table = pd.DataFrame(rows, columns=BENCH_CAPTION_COLUMNS).astype({"subject_count": "Int64"})
    return table, decisions
