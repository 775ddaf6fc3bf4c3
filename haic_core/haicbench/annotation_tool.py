"""HAICBench's human steps in an annotation tool (Label Studio): the tasks we hand it, and what its
finished work means for our batch files.

Three steps, one project each (label configs in haic_resources/annotation/label_configs/):
- `caption_writing`: one task per clip of the batch's annotation task; one writer keeps or rejects the
  clip (the manual check) and writes its caption, starting from HAICTrain's machine caption if any;
- `caption_checking`: one task per kept caption; three checkers other than its writer approve,
  correct or reject it;
- `qa_verification`: one task per generated QA; two verifiers mark it right, or wrong and correct its
  question, options or answer (wrong with no correction rejects it).

Finished work becomes the same files a team without the tool writes into annotations/<batch>/
(captions.jsonl, clip_checks.csv, reviews.csv), so one import path counts the sign-offs. Annotators
are named by their tool user id (`ls-<id>`), never by e-mail. Pure: no I/O, no Dagster.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from haic_core.haicbench.qa import OPTION_LETTERS

STEPS = ("caption_writing", "caption_checking", "qa_verification")
STEP_TITLES = {"caption_writing": "caption writing", "caption_checking": "caption checking",
               "qa_verification": "QA verification"}
MAX_TITLE = 50  # Label Studio's limit on a project title
PAPER_VERIFIERS = 2  # the paper: each QA is checked by 2 annotators
CHECK_DECISIONS = ("approve", "correct", "reject")
MACHINE_CAPTION_MODEL = "haic_train"  # the model version label of the machine caption offered to the writer
WRITER_CAPTION_MODEL = "writer"  # ... and of the writer's caption offered to checkers as the text to correct


def project_title(batch: str, step: str) -> str:
    """The project of one batch's step: found by this exact title, so a re-run creates nothing new. A batch
    name too long for the tool's titles is cut and told apart by a hash of the whole name."""
    suffix = f": {STEP_TITLES[step]}"
    if len(batch) + len(suffix) > MAX_TITLE:
        keep = MAX_TITLE - len(suffix) - 9
        batch = f"{batch[:keep]}~{hashlib.sha256(batch.encode()).hexdigest()[:8]}"
    return batch + suffix


def annotator_id(user_id: Any) -> str:
    """Who did it, as the ledger names them: the tool's user id, never an e-mail."""
    return f"ls-{int(user_id)}"


@dataclass(frozen=True)
class ToolAnnotation:
    """One annotator's latest submitted (not cancelled) annotation of a task: control name -> value
    (a choice, or a text area's text)."""

    annotator: str
    updated_at: str
    values: Mapping[str, str]

    def get(self, name: str) -> str:
        return self.values.get(name, "").strip()


def annotations_of(task: Mapping[str, Any]) -> list[ToolAnnotation]:
    """A task's annotations, one per annotator (their latest), oldest first."""
    latest: dict[str, ToolAnnotation] = {}
    for raw in task.get("annotations") or []:
        if raw.get("was_cancelled") or raw.get("completed_by") is None:
            continue
        who = annotator_id(raw["completed_by"])
        annotation = ToolAnnotation(who, str(raw.get("updated_at") or ""), _values(raw.get("result") or []))
        if who not in latest or annotation.updated_at >= latest[who].updated_at:
            latest[who] = annotation
    return sorted(latest.values(), key=lambda a: (a.updated_at, a.annotator))


def _values(result: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    values = {}
    for region in result:
        value = region.get("value") or {}
        if "choices" in value:
            values[region["from_name"]] = str((value["choices"] or [""])[0])
        elif "text" in value:
            text = value["text"]
            values[region["from_name"]] = "\n".join(text) if isinstance(text, list) else str(text)
    return values


# ---- tasks we hand the tool -------------------------------------------------------------------------


def writing_task(clip: Mapping[str, Any], video_url: str, machine_caption: str | None,
                 format_check: str) -> dict[str, Any]:
    """A clip of the batch as a writing task, with the machine caption (if any) as a prediction to edit."""
    facts = f"{_number(clip.get('length_s'), '.1f')} s, {_number(clip.get('width'), '.0f')}x" \
            f"{_number(clip.get('height'), '.0f')}, {_number(clip.get('fps'), '.0f')} fps"
    data = {"clip_id": str(clip["clip_id"]), "video_id": str(clip.get("video_id") or ""), "video": video_url,
            "facts": facts, "description": f"Original description: {clip.get('description') or '(none)'}",
            "format_check": format_check}
    predictions = [_text_prediction("caption", machine_caption, MACHINE_CAPTION_MODEL)] if machine_caption else []
    return {"data": data, "predictions": predictions}


def machine_caption_note(verdict: str | None, reason: str | None) -> str:
    """What the writer is told about the machine caption they start from."""
    if verdict is None:
        return "No machine caption for this clip: write the caption from the video."
    if verdict == "kept":
        return "The machine caption below passes the format check; check every word against the video."
    return f"The machine caption below breaks the format check ({reason}): fix it."


def checking_task(clip_id: str, video_url: str, caption: str, writer: str) -> dict[str, Any]:
    return {"data": {"clip_id": clip_id, "video": video_url, "caption": caption, "writer": writer},
            "predictions": [_text_prediction("corrected_caption", caption, WRITER_CAPTION_MODEL)]}


def verification_task(qa: Mapping[str, Any], video_url: str) -> dict[str, Any]:
    options = list(qa["options"])
    lettered = "\n".join(f"{OPTION_LETTERS[i]}. {option}" for i, option in enumerate(options))
    return {"data": {"qa_id": str(qa["qa_id"]), "clip_id": str(qa["clip_id"]), "video": video_url,
                     "category": str(qa["category"]).replace("_", " "), "question": str(qa["question"]),
                     "options": lettered, "answer": OPTION_LETTERS[int(qa["answer_index"])]}}


def _text_prediction(name: str, text: str, model_version: str) -> dict[str, Any]:
    return {"model_version": model_version,
            "result": [{"from_name": name, "to_name": "video", "type": "textarea", "value": {"text": [text]}}]}


def _number(value: Any, spec: str) -> str:
    try:
        return format(float(value), spec)
    except (TypeError, ValueError):
        return "?"


# ---- which work is finished ---------------------------------------------------------------------------


def writing_done(task: Mapping[str, Any]) -> ToolAnnotation | None:
    """The writer's annotation of a writing task once it decides the clip (keep with a caption, or reject)."""
    for annotation in reversed(annotations_of(task)):
        decision = annotation.get("clip_check")
        if decision == "reject" or (decision == "keep" and annotation.get("caption")):
            return annotation
    return None


def checks_of(task: Mapping[str, Any]) -> list[ToolAnnotation]:
    """A checking task's checks by checkers other than its writer that decide something."""
    writer = str(task["data"].get("writer") or "")
    return [a for a in annotations_of(task) if a.annotator != writer and a.get("check") in CHECK_DECISIONS]


def checking_finished(task: Mapping[str, Any], checkers_required: int) -> bool:
    """Enough checkers, or one rejection (nothing more can bring the caption back)."""
    checks = checks_of(task)
    return len(checks) >= checkers_required or any(c.get("check") == "reject" for c in checks)


def verifications_of(task: Mapping[str, Any]) -> list[ToolAnnotation]:
    return [a for a in annotations_of(task) if a.get("verdict") in ("right", "wrong")]


def captions_finished(writing: Sequence[Mapping[str, Any]], checking: Sequence[Mapping[str, Any]],
                      checkers_required: int) -> bool:
    """Every clip decided by its writer, and every kept caption checked to the end."""
    checking_by_clip = {t["data"]["clip_id"]: t for t in checking}
    for task in writing:
        written = writing_done(task)
        if written is None:
            return False
        if written.get("clip_check") == "keep":
            check = checking_by_clip.get(task["data"]["clip_id"])
            if check is None or not checking_finished(check, checkers_required):
                return False
    return bool(writing)


def checking_tasks_due(writing: Sequence[Mapping[str, Any]], checked_clips: Iterable[str]) -> list[dict[str, Any]]:
    """Checking tasks for the captions written since the last look (one per clip, ever)."""
    have, due = set(checked_clips), []
    for task in writing:
        written = writing_done(task)
        if written is not None and written.get("clip_check") == "keep" and task["data"]["clip_id"] not in have:
            due.append(checking_task(task["data"]["clip_id"], task["data"]["video"], written.get("caption"),
                                     written.annotator))
    return due


# ---- finished work as the batch's files ---------------------------------------------------------------


def caption_export(writing: Sequence[Mapping[str, Any]],
                   checking: Sequence[Mapping[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """(captions.jsonl rows, clip_checks.csv rows) of the decided clips: the writer's keep/reject with
    its reason; per kept clip the caption (the last checker's correction, else the writer's), the writer,
    the checkers who approved or corrected it, and every check with its note (rejections included)."""
    checking_by_clip = {t["data"]["clip_id"]: t for t in checking}
    captions, clip_checks = [], []
    for task in writing:
        written = writing_done(task)
        if written is None:
            continue
        clip_id, decision = task["data"]["clip_id"], written.get("clip_check")
        clip_checks.append({"clip_id": clip_id, "checker": written.annotator, "decision": decision,
                            "note": written.get("reject_reason") if decision == "reject" else ""})
        row: dict[str, Any] = {"clip_id": clip_id, "caption": "", "writer": written.annotator, "checkers": [],
                               "checks": []}
        if decision == "keep":
            row["caption"] = written.get("caption")
            check_task = checking_by_clip.get(clip_id)
            for check in checks_of(check_task) if check_task is not None else []:
                verdict, corrected = check.get("check"), check.get("corrected_caption")
                if verdict == "correct" and (not corrected or corrected == written.get("caption")):
                    verdict = "approve"  # a "correction" that leaves the caption it was shown approves it
                if verdict == "correct":
                    row["caption"] = corrected
                row["checks"].append({"checker": check.annotator, "decision": verdict, "note": check.get("note")})
            row["checkers"] = [c["checker"] for c in row["checks"] if c["decision"] != "reject"]
            if row["caption"] != written.get("caption"):
                row["written_caption"] = written.get("caption")
        captions.append(row)
    return captions, clip_checks


def review_rows(verification: Sequence[Mapping[str, Any]], qa_ids: Iterable[str]) -> list[dict[str, str]]:
    """reviews.csv rows of the verifications of the batch's current QA, in the order they were made
    (the last correction wins): right -> approve; wrong with a correction -> correct; wrong alone -> reject."""
    current, rows = set(qa_ids), []
    for task in verification:
        qa_id = task["data"].get("qa_id")
        if qa_id not in current:
            continue
        for check in verifications_of(task):
            options = [line.strip() for line in check.get("corrected_options").splitlines() if line.strip()]
            corrected = {"corrected_question": check.get("corrected_question"),
                         "corrected_options": json.dumps(options, ensure_ascii=False) if options else "",
                         "corrected_answer": check.get("corrected_answer")}
            if check.get("verdict") == "right":
                decision, corrected = "approve", dict.fromkeys(corrected, "")
            else:
                decision = "correct" if any(corrected.values()) else "reject"
            rows.append({"qa_id": qa_id, "reviewer_id": check.annotator, "decision": decision, **corrected,
                         "note": check.get("note"), "updated_at": check.updated_at})
    rows.sort(key=lambda r: r.pop("updated_at"))
    return rows


def verification_finished(verification: Sequence[Mapping[str, Any]], qa_ids: Iterable[str],
                          verifiers_required: int) -> bool:
    by_qa = {t["data"].get("qa_id"): t for t in verification}
    wanted = list(qa_ids)
    return bool(wanted) and all(q in by_qa and len(verifications_of(by_qa[q])) >= verifiers_required for q in wanted)


# ---- progress ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StepProgress:
    """One step of a batch: tasks done of all, annotations per annotator, and how often the people on a
    task agreed (tasks with one verdict among those seen by two or more; None where one person decides)."""

    step: str
    done: int
    total: int
    per_annotator: Mapping[str, int]
    agreed: int | None = None
    compared: int = 0

    def agreement(self) -> str:
        if self.agreed is None:
            return "-"
        if not self.compared:
            return "n/a"
        return f"{100 * self.agreed / self.compared:.0f}% ({self.agreed} of {self.compared} tasks)"


def step_progress(step: str, tasks: Sequence[Mapping[str, Any]], required: int) -> StepProgress:
    per_annotator: Counter[str] = Counter()
    done = agreed = compared = 0
    for task in tasks:
        if step == "caption_writing":
            people = [writing_done(task)] if writing_done(task) else []
            finished, verdicts = bool(people), []
        elif step == "caption_checking":
            people = checks_of(task)
            finished, verdicts = checking_finished(task, required), [a.get("check") for a in people]
        else:
            people = verifications_of(task)
            finished, verdicts = len(people) >= required, [a.get("verdict") for a in people]
        per_annotator.update(a.annotator for a in people)
        done += finished
        if len(verdicts) >= 2:
            compared += 1
            agreed += len(set(verdicts)) == 1
    return StepProgress(step, done, len(tasks), dict(sorted(per_annotator.items())),
                        None if step == "caption_writing" else agreed, compared)
