"""Annotation tasks: the kept clips of chosen source partitions, handed to the people who check
clips by hand and write captions (the paper: Omega clips -> the accumulation stage -> a manual
check -> human captions by 1 writer and 3 checkers).

A task is one annotation batch: the batch that comes back (captions.jsonl, reviews.csv) may only
name clips of its own task, and each caption needs its sign-offs. Pure: no I/O, no Dagster.
"""

from __future__ import annotations

import io
import json
from collections.abc import Collection, Mapping, Sequence

import pandas as pd

from haic_core.decisions import Decision, dropped, error, kept
from haic_core.haic_train.export import clip_file_name

PAPER_WRITERS = 1  # the paper: each caption is written by one annotator ...
PAPER_CHECKERS = 3  # ... and checked by three others
TASK_MANIFEST = "manifest.jsonl"
TASK_README = "README.md"
TASK_CLIP_FOLDER = "clips"
# The manual check's results (optional): clip_id, checker, decision keep|reject, note.
CLIP_CHECKS_FILE = "clip_checks.csv"
CHECK_DECISIONS = ("keep", "reject")
# The clip's facts from action_filtered that the writers and checkers see.
CLIP_FACTS = ["start_s", "end_s", "length_s", "fps", "width", "height", "description", "keypoint_l1",
              "affine_residual"]
TASK_COLUMNS = ["clip_id", "video_id", "source_partition", *CLIP_FACTS, "clip_key", "clip_path", "video", "uri"]


def task_video_path(clip_id: str) -> str:
    """The clip's file in the task folder (no `:` or `/` in its name)."""
    return f"{TASK_CLIP_FOLDER}/{clip_file_name(clip_id)}"


def task_table(kept_clips: Mapping[str, pd.DataFrame], media_uri: str) -> tuple[pd.DataFrame, list[Decision]]:
    """(TASK_COLUMNS, one row per clip; a decision per clip) from the action_filtered tables of the
    chosen partitions (partition -> table). A clip listed by two partitions is taken once (the first
    partition in the given order) and its second listing dropped with the partition it came from."""
    rows, decisions, seen = [], [], {}
    for partition, table in kept_clips.items():
        for clip in table.to_dict("records"):
            clip_id = str(clip["clip_id"])
            if clip_id in seen:
                decisions.append(dropped(clip_id, f"also kept in partition {seen[clip_id]}: exported once",
                                         item_kind="clip", parent_id=clip.get("video_id"),
                                         detail={"source_partition": partition}))
                continue
            seen[clip_id] = partition
            key = clip.get("clip_key")
            rows.append({"clip_id": clip_id, "video_id": str(clip["video_id"]), "source_partition": partition,
                         **{fact: clip.get(fact) for fact in CLIP_FACTS}, "clip_key": key,
                         "clip_path": clip.get("clip_path"), "video": task_video_path(clip_id),
                         "uri": f"{media_uri}/{key}" if key else None})
    return pd.DataFrame(rows, columns=TASK_COLUMNS), decisions


def exported(table: pd.DataFrame, batch: str, missing: Collection[str] = ()) -> list[Decision]:
    """A decision per task clip: kept (exported for the batch), or an error when its file was not found."""
    decisions = []
    for clip in table.itertuples(index=False):
        if clip.clip_id in missing:
            decisions.append(error(clip.clip_id, f"clip file not found ({clip.clip_key}): not exported",
                                   item_kind="clip", parent_id=clip.video_id))
        else:
            decisions.append(kept(clip.clip_id, f"exported for annotation in batch {batch}", item_kind="clip",
                                  parent_id=clip.video_id, detail={"source_partition": clip.source_partition}))
    return decisions


def task_manifest(table: pd.DataFrame) -> bytes:
    """One JSON line per clip: its id, video, partition, file in the task folder, object-store URI and facts."""
    records = table.drop(columns=["clip_path"]).to_dict("records")
    return "".join(json.dumps(r, default=float, ensure_ascii=False) + "\n" for r in records).encode("utf-8")


def task_readme(batch: str, n_clips: int, writers: int, checkers: int) -> str:
    return "\n".join([
        f"# HAICBench annotation task {batch}",
        "",
        f"{n_clips} clips kept by the accumulation stage (`{TASK_MANIFEST}`: each clip's id, file under "
        f"`{TASK_CLIP_FOLDER}/`, object-store URI and facts).",
        "",
        f"1. Check each clip by hand; record it in `annotations/{batch}/{CLIP_CHECKS_FILE}` (clip_id, checker, "
        "decision keep|reject, note): a rejected clip's caption is not imported.",
        f"2. Write one caption per kept clip into `annotations/{batch}/captions.jsonl`: `clip_id` (from the "
        "manifest, exactly), `caption` (the standardized format: \"There is 1 subject ...\" / \"There are N "
        "subjects ...\", then one paragraph per subject, attributes first, then actions in order), "
        "`writer`, `checkers` (a list).",
        f"3. Each caption needs {writers} writer(s) and {checkers} distinct checker(s) other than the writer; "
        "captions with fewer sign-offs, or naming a clip that is not in this task, are not imported "
        "(the ledger says why).",
        "",
    ])


def sign_off_decision(clip_id: str, writer: str, checkers: Sequence[str], *, writers_required: int,
                      checkers_required: int, parent_id: str | None) -> Decision | None:
    """A dropped decision when a caption lacks its writer or has fewer distinct checkers (the writer
    not counted) than required; None when it has its sign-offs."""
    writers = 1 if writer.strip() else 0
    if writers < writers_required:
        return dropped(clip_id, f"no writer named ({writers_required} required)", item_kind="caption",
                       parent_id=parent_id, metric="writers", value=float(writers),
                       threshold=float(writers_required))
    distinct = {c.strip() for c in checkers if c.strip()} - {writer.strip()}
    if len(distinct) < checkers_required:
        return dropped(clip_id, f"{len(distinct)} distinct checker(s) other than the writer < {checkers_required} "
                                f"required", item_kind="caption", parent_id=parent_id, metric="checkers",
                       value=float(len(distinct)), threshold=float(checkers_required))
    return None


def not_in_task(clip_id: str, batch: str, n_task_clips: int) -> Decision:
    return error(clip_id, f"clip {clip_id!r} is not in annotation task {batch} ({n_task_clips} clips)",
                 item_kind="caption")


def manual_check(data: bytes, task_clips: Collection[str], batch: str) -> tuple[dict[str, str], list[Decision]]:
    """(clip id -> why it was rejected, for the clips a checker rejected; an error decision per check row
    that names a clip outside the batch's task, or no clip, or a decision other than keep/reject) from
    the batch's clip_checks.csv."""
    checks = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)
    if "clip_id" not in checks.columns or "decision" not in checks.columns:
        raise ValueError(f"{CLIP_CHECKS_FILE} needs the columns clip_id and decision (got {list(checks.columns)})")
    rejected, errors = {}, []
    for number, row in enumerate(checks.to_dict("records"), start=2):  # row 1 is the header
        clip_id, decision = row["clip_id"].strip(), row["decision"].strip().lower()
        item = clip_id or f"{batch}#{CLIP_CHECKS_FILE}:{number}"
        if clip_id not in task_clips:
            errors.append(error(item, f"{CLIP_CHECKS_FILE} row {number}: clip {clip_id!r} is not in annotation task "
                                      f"{batch} ({len(task_clips)} clips)", item_kind="clip_check"))
        elif decision not in CHECK_DECISIONS:
            errors.append(error(item, f"{CLIP_CHECKS_FILE} row {number}: decision {decision!r} is not one of "
                                      f"{CHECK_DECISIONS}", item_kind="clip_check"))
        elif decision == "reject":
            note = str(row.get("note") or "").strip()
            rejected[clip_id] = f"rejected in the manual check by {row.get('checker') or 'a checker'}" + (
                f": {note}" if note else "")
    return rejected, errors
