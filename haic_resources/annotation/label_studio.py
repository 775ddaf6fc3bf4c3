"""Label Studio, the annotation tool of HAICBench's human steps, through its SDK (the `annotation` extra).

The server runs on its own (scripts/label_studio_install.sh, or any Label Studio 1.23 deployment); we
reach it at HAIC_LABEL_STUDIO_URL with a personal access token (HAIC_LABEL_STUDIO_TOKEN: a JWT refresh
token that the SDK trades for short-lived access tokens; 1.23 turns legacy tokens off by default). The
token is an EnvVar: never in run config, the UI, logs or errors.

Videos are served from the media store: local media under the server's LOCAL_FILES_DOCUMENT_ROOT
(HAIC_LABEL_STUDIO_DOCUMENT_ROOT here) through a local-files storage on the writing project; media in
S3 as presigned URLs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

from dagster import ConfigurableResource
from pydantic import Field

from haic_core.haicbench.annotation_tool import (MACHINE_CAPTION_MODEL, PAPER_VERIFIERS, WRITER_CAPTION_MODEL,
                                                 project_title)
from haic_core.haicbench.annotation_tasks import PAPER_CHECKERS, PAPER_WRITERS

LABEL_CONFIGS = Path(__file__).with_name("label_configs")
NOT_CONFIGURED = ("no annotation tool configured: set HAIC_LABEL_STUDIO_URL and HAIC_LABEL_STUDIO_TOKEN (a Label "
                  "Studio personal access token); without them batches go through annotations/<batch>/ files")
# Annotations each step's tasks ask for (the paper's people per item; the sign-off counts are settings of
# bench_captions and qa_verified, checked on import).
OVERLAP = {"caption_writing": PAPER_WRITERS, "caption_checking": PAPER_CHECKERS, "qa_verification": PAPER_VERIFIERS}
PAGE_SIZE = 100
# The predictions an annotator's first draft starts from: the writer edits HAICTrain's machine caption,
# a checker the writer's caption.
PRELABEL = {"caption_writing": MACHINE_CAPTION_MODEL, "caption_checking": WRITER_CAPTION_MODEL}


class AnnotationToolError(Exception):
    """The tool refused or did not answer; the message names the server and the call, never the token."""


def label_config(step: str) -> str:
    return (LABEL_CONFIGS / f"{step}.xml").read_text(encoding="utf-8")


class LabelStudioResource(ConfigurableResource):
    """Where the annotation tool is, and how to serve it the batch's videos."""

    url: str | None = Field(default=None, description="HAIC_LABEL_STUDIO_URL, e.g. http://127.0.0.1:8080")
    token: str | None = Field(default=None, description="HAIC_LABEL_STUDIO_TOKEN: a personal access token (EnvVar)")
    document_root: str | None = Field(
        default=None, description="HAIC_LABEL_STUDIO_DOCUMENT_ROOT: the server's LOCAL_FILES_DOCUMENT_ROOT, a folder "
                                  "holding the local media store (local media is served through it)")
    url_expiry_s: int = Field(default=7 * 24 * 3600, description="how long presigned S3 video URLs live")

    @property
    def configured(self) -> bool:
        return bool(self.url and self.token)

    def client(self) -> LabelStudioClient:
        if not self.configured:
            raise AnnotationToolError(NOT_CONFIGURED)
        return LabelStudioClient(self.url, self.token)

    def video_url(self, media, key: str) -> str | None:
        """How the tool's browser pages fetch one media-store object: a local-files URL when the file lies
        under the document root, a presigned URL when the store is S3; None when neither works."""
        local = media.local_path(key)
        if local is not None:
            root = Path(self.document_root).resolve() if self.document_root else None
            path = Path(local).resolve()
            if root is None or not path.is_relative_to(root):
                return None
            return f"/data/local-files/?d={quote(path.relative_to(root).as_posix())}"
        presign = getattr(media, "presigned_url", None)
        return presign(key, self.url_expiry_s) if presign else None

    def local_storage_folder(self, media) -> str | None:
        """The folder a local-files storage must name for the tool to serve the media store's files."""
        root = media.local_path("")
        return str(Path(root).resolve()) if root is not None and self.document_root else None


class LabelStudioClient:
    """The calls the platform makes, on the SDK's client."""

    def __init__(self, url: str, token: str):
        try:
            from label_studio_sdk import LabelStudio
        except ImportError as exc:
            raise AnnotationToolError("the Label Studio SDK is not installed: uv sync --extra annotation") from exc
        self.url = url.rstrip("/")
        self._sdk = LabelStudio(base_url=self.url, api_key=token, timeout=60)

    def _call(self, what: str, call, *args, **kwargs):
        from label_studio_sdk.core.api_error import ApiError
        import httpx

        try:
            return call(*args, **kwargs)
        except ApiError as exc:
            body = exc.body if isinstance(exc.body, dict) else {"detail": exc.body}
            detail = " ".join(str(body[k]) for k in ("detail", "validation_errors") if body.get(k))
            raise AnnotationToolError(f"Label Studio at {self.url} refused {what}: HTTP {exc.status_code} "
                                      f"{detail}") from None
        except httpx.HTTPError as exc:
            raise AnnotationToolError(f"Label Studio at {self.url} did not answer {what}: {exc}") from None

    # -- projects ---------------------------------------------------------------------------------

    def find_project(self, batch: str, step: str) -> int | None:
        title = project_title(batch, step)
        projects = self._call("listing projects", lambda: list(self._sdk.projects.list(title=title)))
        found = sorted(p.id for p in projects if p.title == title)  # the title filter matches substrings
        return found[0] if found else None

    def ensure_project(self, batch: str, step: str, local_folder: str | None = None) -> int:
        """The batch's project of `step`, made from our label config the first time; with `local_folder`, a
        local-files storage naming it (what lets the tool serve the media store's clips)."""
        project_id = self.find_project(batch, step)
        if project_id is None:
            project = self._call(f"creating project {project_title(batch, step)!r}", self._sdk.projects.create,
                                 title=project_title(batch, step), label_config=label_config(step),
                                 description=f"HAICBench annotation batch {batch}", maximum_annotations=OVERLAP[step],
                                 overlap_cohort_percentage=100, show_collab_predictions=True,
                                 model_version=PRELABEL.get(step, ""))
            project_id = project.id
        if local_folder is not None:
            storages = self._call("listing local storages", self._sdk.import_storage.local.list, project=project_id)
            if not any(s.path == local_folder for s in storages):
                self._call(f"adding local storage {local_folder}", self._sdk.import_storage.local.create,
                           project=project_id, path=local_folder, title="HAIC media store", use_blob_urls=False)
        return project_id

    # -- tasks -----------------------------------------------------------------------------------

    def tasks(self, project_id: int, updated_after: str | None = None) -> list[dict[str, Any]]:
        """The project's tasks with their annotations (all, or those updated after the ISO time)."""
        query = None
        if updated_after:
            query = json.dumps({"filters": {"conjunction": "and", "items": [
                {"filter": "filter:tasks:updated_at", "operator": "greater", "type": "Datetime",
                 "value": updated_after}]}})
        return self._call(f"listing tasks of project {project_id}",
                          lambda: [_task_record(t) for t in self._pages(project_id, query)])

    def _pages(self, project_id: int, query: str | None) -> Iterator[Any]:
        yield from self._sdk.tasks.list(project=project_id, query=query, fields="all", page_size=PAGE_SIZE)

    def task_keys(self, project_id: int, key: str) -> set[str]:
        """The values of data field `key` over the project's tasks: what is there before anything is added."""
        return {str(t["data"].get(key)) for t in self.tasks(project_id)}

    def add_tasks(self, project_id: int, tasks: Sequence[dict[str, Any]], key: str) -> int:
        """Import the tasks whose data `key` the project does not hold yet (looked up first, so a re-run adds
        no duplicate); the number added."""
        have = self.task_keys(project_id, key)
        new = [t for t in tasks if str(t["data"][key]) not in have]
        if new:
            self._call(f"importing {len(new)} tasks into project {project_id}", self._sdk.projects.import_tasks,
                       id=project_id, request=new, return_task_ids=True)
        return len(new)


def _task_record(task) -> dict[str, Any]:
    """A task as plain data: id, data, updated_at and its annotations (user ids only: the SDK's task also
    carries annotator e-mails, which must not travel further)."""
    record = task.dict() if hasattr(task, "dict") else dict(task)
    annotations = [{"id": a.get("id"), "completed_by": _user_id(a.get("completed_by")),
                    "was_cancelled": bool(a.get("was_cancelled")), "updated_at": _iso(a.get("updated_at")),
                    "result": a.get("result") or []} for a in record.get("annotations") or []]
    return {"id": record["id"], "data": dict(record.get("data") or {}), "updated_at": _iso(record.get("updated_at")),
            "annotations": annotations}


def _user_id(value: Any) -> int | None:
    if isinstance(value, dict):
        value = value.get("id")
    return int(value) if value is not None else None


def _iso(value: Any) -> str:
    """Times as the tool writes them (UTC, ISO 8601), whether the SDK gave a string or a datetime."""
    if value is None:
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    # Always with microseconds: the cursor compares these as text.
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
