"""A batch's round trip through the annotation tool (Label Studio): its clips pushed as writing tasks
(annotation_tasks), then, on each sensor tick, work moved on between the tool's steps and finished work
written into annotations/<batch>/ as the files a team without the tool writes, where the annotation
sensor turns changed files into bench_captions, qa_pairs and qa_verified runs.

Every push looks before it acts (the project's tasks by clip or QA id), so a re-run or a second tick adds
no duplicate task. The cursor is, per project, the latest task update seen: a tick reads a project again
only when something in it changed after that, which is also how an edit after import reaches the files.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping

import pandas as pd

from haic_core.haic_train.caption_format import check_caption
from haic_core.haicbench.annotation_tasks import CLIP_CHECKS_FILE, PAPER_CHECKERS
from haic_core.haicbench.annotation_tool import (PAPER_VERIFIERS, caption_export, captions_finished,
                                                 checking_tasks_due, machine_caption_note, review_rows,
                                                 verification_finished, verification_task, writing_task)
from haic_core.haicbench.annotations import CAPTION_FILES, REVIEWS_FILE
from haic_resources.storage.files import sha256_bytes

TOOL_CAPTIONS = CAPTION_FILES[0]  # captions.jsonl


def push_writing_tasks(tool, batch: str, table: pd.DataFrame, media, tables) -> dict:
    """The task clips as writing tasks of the batch's project, HAICTrain's machine caption offered where one
    exists; what was pushed, for the materialization's metadata. Raises ValueError when a clip cannot be
    served to the tool (not under its document root, not in S3)."""
    urls = {clip.clip_id: tool.video_url(media, clip.clip_key) if clip.clip_key else None
            for clip in table.itertuples(index=False)}
    unserved = sorted(c for c, url in urls.items() if url is None)
    if unserved:
        raise ValueError(f"{len(unserved)} clip(s) cannot be served to Label Studio ({', '.join(unserved[:3])}): "
                         "local media must lie under HAIC_LABEL_STUDIO_DOCUMENT_ROOT (the server's "
                         "LOCAL_FILES_DOCUMENT_ROOT), or the media store must be in S3")
    machine = _machine_captions(tables, set(table["source_partition"]))
    tasks = []
    for clip in table.to_dict("records"):
        caption = machine.get(clip["clip_id"])
        check = check_caption(caption, item_id=clip["clip_id"]) if caption else None
        note = machine_caption_note(check and check.verdict, check and check.reason)
        tasks.append(writing_task(clip, urls[clip["clip_id"]], caption, note))
    client = tool.client()
    project = client.ensure_project(batch, "caption_writing", tool.local_storage_folder(media))
    added = client.add_tasks(project, tasks, key="clip_id")
    return {"label_studio_project": f"{client.url}/projects/{project}", "tasks_added": added,
            "tasks_already_there": len(tasks) - added, "machine_captions_offered": sum(c in machine for c in urls)}


def _machine_captions(tables, partitions) -> dict[str, str]:
    """clip id -> HAICTrain's machine caption (the captions stage) of the source partitions, where one exists."""
    found = {}
    for partition in sorted(partitions):
        captions = tables.read("captions", partition)
        if captions is not None and len(captions):
            found.update({str(c): str(t) for c, t in zip(captions["clip_id"], captions["caption"]) if t})
    return found


def sign_offs_required() -> tuple[int, int]:
    """(checkers per caption, verifiers per QA) as this deployment's bench_captions and qa_verified count them."""
    from haic_platform.settings import load_settings
    from haic_assets.stages import settings_fields

    settings = load_settings(settings_fields())
    return (int(settings.stage("bench_captions").get("checkers_required", PAPER_CHECKERS)),
            int(settings.stage("qa_verified").get("required_approvals", PAPER_VERIFIERS)))


def sync_batch(client, batch: str, seen: Mapping[str, str], annotations, tables, log,
               required: tuple[int, int] = (PAPER_CHECKERS, PAPER_VERIFIERS)) -> dict[str, str]:
    """One tick for one batch: move work on in the tool and write its finished work into the batch's folder.
    `seen`: project step -> the latest task update read (and the QA last sent); returns the new one.
    `required`: checkers per caption and verifiers per QA before a step's work counts as finished."""
    seen, (checkers_required, verifiers_required) = dict(seen), required
    writing_project = client.find_project(batch, "caption_writing")
    if writing_project is None:
        return seen
    checking_project = client.ensure_project(batch, "caption_checking")
    changed = _changed(client, {"caption_writing": writing_project, "caption_checking": checking_project}, seen)
    if changed:
        writing, checking = client.tasks(writing_project), client.tasks(checking_project)
        due = checking_tasks_due(writing, {t["data"]["clip_id"] for t in checking})
        if due:
            client.add_tasks(checking_project, due, key="clip_id")
            log.info(f"annotation tool, batch {batch}: {len(due)} caption(s) written, sent to checking")
            checking = client.tasks(checking_project)
        if captions_finished(writing, checking, checkers_required):
            captions, clip_checks = caption_export(writing, checking)
            _write_if_changed(annotations, f"{batch}/{TOOL_CAPTIONS}",
                              "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in captions).encode("utf-8"), log)
            _write_if_changed(annotations, f"{batch}/{CLIP_CHECKS_FILE}", _csv(clip_checks), log)
    qa = tables.read("qa_pairs", batch)
    if qa is None or not len(qa):
        return seen
    verification_project = client.ensure_project(batch, "qa_verification")
    qa_stamp = sha256_bytes("\n".join(sorted(qa["qa_id"])).encode())
    added = 0
    if seen.get("qa_sent") != qa_stamp:  # new or regenerated QA: send the ones the project lacks
        videos = _video_urls(client, writing_project)
        added = client.add_tasks(verification_project, [verification_task(r, videos.get(r["clip_id"], ""))
                                                        for r in qa.to_dict("records")], key="qa_id")
        seen["qa_sent"] = qa_stamp
        log.info(f"annotation tool, batch {batch}: {added} QA sent to verification")
    if _changed(client, {"qa_verification": verification_project}, seen) or added:
        verification = client.tasks(verification_project)
        if verification_finished(verification, qa["qa_id"], verifiers_required):
            _write_if_changed(annotations, f"{batch}/{REVIEWS_FILE}", _csv(review_rows(verification, qa["qa_id"])), log)
    return seen


def _changed(client, projects: Mapping[str, int], seen: dict[str, str]) -> bool:
    """Whether any of the projects has tasks updated after the cursor (which moves to the latest seen)."""
    changed = False
    for step, project in projects.items():
        updated = client.tasks(project, updated_after=seen.get(step))
        if updated:
            seen[step] = max(t["updated_at"] for t in updated)
            changed = True
    return changed


def _video_urls(client, writing_project: int) -> dict[str, str]:
    return {t["data"]["clip_id"]: t["data"].get("video", "") for t in client.tasks(writing_project)}


def _csv(rows: list[dict]) -> bytes:
    buffer = io.StringIO()
    pd.DataFrame(rows).to_csv(buffer, index=False)
    return buffer.getvalue().encode("utf-8")


def _write_if_changed(store, key: str, data: bytes, log) -> None:
    if store.get_bytes(key) != data:
        store.put_bytes(key, data)
        log.info(f"annotation tool: wrote {key}")
