"""A local double of the Gemini Developer API (v1beta) on 127.0.0.1, for the real google-genai
client: generation, the Files API, and batch mode. See tests/llm_servers.py."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs

from tests.llm_server_base import FakeServerBase, Reply


class FakeGeminiServer(FakeServerBase):
    """`generateContent`, the Files API resumable upload, file GET (with PROCESSING→ACTIVE)
    and DELETE, as the Gemini Developer API (v1beta) speaks them."""

    def __init__(self, reply: Reply = "ok", *, polls_until_active: int = 1, **server_options: Any) -> None:
        """`server_options`: latency and token usage, as every fake server takes them."""
        super().__init__(reply, **server_options)
        self.polls_until_active = polls_until_active
        self.files: dict[str, dict[str, Any]] = {}  # name -> {"bytes", "mime", "polls"}
        self._uploads: dict[str, dict[str, Any]] = {}
        self.deleted: list[str] = []

    def _success(self, model: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
        def build(body: dict[str, Any]) -> dict[str, Any]:
            return {
                "candidates": [
                    {
                        "content": {"parts": [{"text": self._reply_text(body)}], "role": "model"},
                        "finishReason": "STOP",
                        "index": 0,
                    }
                ],
                "usageMetadata": {
                    "promptTokenCount": self.input_tokens,
                    "candidatesTokenCount": self.output_tokens,
                    "totalTokenCount": self.input_tokens + self.output_tokens,
                },
                "modelVersion": model,
            }

        return build

    @staticmethod
    def _error(code: int) -> dict[str, Any]:
        status = {429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}.get(code, "ERROR")
        return {"error": {"code": code, "message": f"scripted {code}", "status": status}}

    def route(self, h: BaseHTTPRequestHandler, method: str, url: Any, raw: bytes) -> None:
        path = url.path
        if method == "POST" and path.startswith("/v1beta/models/") and path.endswith(":generateContent"):
            model = path[len("/v1beta/models/") : -len(":generateContent")]
            self._generation(h, "generateContent", raw, self._success(model), self._error)
        elif method == "POST" and path.startswith("/v1beta/models/") and path.endswith(":batchGenerateContent"):
            self._create_batch(h, path[len("/v1beta/models/"):-len(":batchGenerateContent")], raw)
        elif method == "GET" and path == "/v1beta/batches":
            self._list_batches(h, parse_qs(url.query))
        elif method == "GET" and path.startswith("/v1beta/batches/"):
            if not self._unavailable(h, self._error):
                self._send_batch(h, self._poll_batch_job(path[len("/v1beta/"):]))
        elif method == "POST" and path.startswith("/v1beta/batches/") and path.endswith(":cancel"):
            job = self._cancel_batch_job(path[len("/v1beta/"):-len(":cancel")])
            self.send(h, 200, {}) if job is not None else self._send_batch(h, None)
        elif method == "POST" and path == "/upload/v1beta/files":
            self._upload(h, url, raw)
        elif method == "GET" and path.endswith(":download") and "/files/" in path:
            name = "files/" + path.split("/files/", 1)[1][:-len(":download")]
            with self._lock:
                self.requests["files.download"] += 1
                info = self.files.get(name)
            if info is None:
                self.send(h, 404, {"error": {"code": 404, "message": "no such file", "status": "NOT_FOUND"}})
            else:
                self.send(h, 200, info["bytes"], content_type="application/octet-stream")
        elif method == "GET" and path.startswith("/v1beta/files/"):
            self._get_file(h, path[len("/v1beta/") :])
        elif method == "DELETE" and path.startswith("/v1beta/files/"):
            name = path[len("/v1beta/") :]
            with self._lock:
                self.requests["files.delete"] += 1
                self.files.pop(name, None)
                self.deleted.append(name)
            self.send(h, 200, {})
        else:
            self.send(h, 404, {"error": {"code": 404, "message": f"no route {path}", "status": "NOT_FOUND"}})

    # ---- batch mode: batchGenerateContent with inline requests or a JSONL file, batches/{id},
    # :cancel, and the results file's download ---------------------------------------------------

    _BATCH_STATES = {"running": "BATCH_STATE_RUNNING", "succeeded": "BATCH_STATE_SUCCEEDED",
                     "failed": "BATCH_STATE_FAILED", "expired": "BATCH_STATE_EXPIRED",
                     "cancelled": "BATCH_STATE_CANCELLED"}

    def _create_batch(self, h: BaseHTTPRequestHandler, model: str, raw: bytes) -> None:
        batch = json.loads(raw or b"{}").get("batch", {})
        source = batch.get("inputConfig", {})
        if source.get("fileName"):  # a JSONL file uploaded through the Files API: {"key", "request"} a line
            with self._lock:
                self.requests["batch.input_file"] += 1
                info = self.files.get(source["fileName"])
            if info is None:
                self.send(h, 400, {"error": {"code": 400, "message": "no such input file", "status": "INVALID_ARGUMENT"}})
                return
            lines = [json.loads(line) for line in info["bytes"].decode().splitlines() if line.strip()]
            requests = [(line["key"], line["request"]) for line in lines]
        else:
            inlined = source.get("requests", {}).get("requests", [])
            requests = [((item.get("metadata") or {}).get("key", str(n)), item.get("request", {}))
                        for n, item in enumerate(inlined)]
        job = self._new_batch_job(f"batches/{uuid.uuid4().hex[:12]}", requests)
        job["model"], job["display_name"] = model, batch.get("displayName", "")
        job["file_input"] = bool(source.get("fileName"))
        if not self._after_create(h, self._error):
            self._send_batch(h, job)

    def _list_batches(self, h: BaseHTTPRequestHandler, query: dict[str, list[str]]) -> None:
        """`GET batches?pageSize=&pageToken=`: the operations newest first, a page at a time."""
        jobs = self._listed_jobs()
        size = self.page_size(int((query.get("pageSize") or ["50"])[0]))
        start = int((query.get("pageToken") or ["0"])[0])
        body: dict[str, Any] = {"operations": [self._batch_json(job) for job in jobs[start:start + size]]}
        if start + size < len(jobs):
            body["nextPageToken"] = str(start + size)
        self.send(h, 200, body)

    def _send_batch(self, h: BaseHTTPRequestHandler, job: dict[str, Any] | None) -> None:
        if job is None:
            self.send(h, 404, {"error": {"code": 404, "message": "no such batch", "status": "NOT_FOUND"}})
            return
        self.send(h, 200, self._batch_json(job))

    def _batch_json(self, job: dict[str, Any]) -> dict[str, Any]:
        created = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(job["created"])) + f"{job['created'] % 1:.6f}"[1:] + "Z"
        metadata: dict[str, Any] = {
            "@type": "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch",
            "model": f"models/{job['model']}", "displayName": job["display_name"],
            "state": self._BATCH_STATES[job["state"]], "createTime": created}
        if job["state"] in ("succeeded", "expired", "cancelled"):
            answers = []
            for key, body, fate in self._batch_outcomes(job):
                if fate == "ok":
                    answers.append({"response": self._success(job["model"])(body), "metadata": {"key": key}})
                elif fate == "failed":
                    answers.append({"error": {"code": 13, "message": "scripted item failure"}, "metadata": {"key": key}})
            if job["file_input"]:  # the results as a file too, one {"key", "response" | "error"} a line
                name = f"files/batch-results-{job['id'].rsplit('/', 1)[-1]}"
                lines = [json.dumps({"key": a.pop("metadata")["key"], **a}) for a in answers]
                with self._lock:
                    self.files[name] = {"bytes": "\n".join(lines).encode(), "mime": "application/jsonl", "polls": 0}
                metadata["output"] = {"responsesFile": name}
            else:
                metadata["output"] = {"inlinedResponses": {"inlinedResponses": answers}}
        return {"name": job["id"], "metadata": metadata, "done": job["state"] != "running"}

    def _upload(self, h: BaseHTTPRequestHandler, url: Any, raw: bytes) -> None:
        command = (h.headers.get("X-Goog-Upload-Command") or "").lower()
        query = parse_qs(url.query)
        if command == "start":
            with self._lock:
                self.requests["files.upload.start"] += 1
            upload_id = uuid.uuid4().hex
            meta = json.loads(raw or b"{}").get("file", {})
            self._uploads[upload_id] = {
                "mime": h.headers.get("X-Goog-Upload-Header-Content-Type") or meta.get("mimeType"),
                "size": int(h.headers.get("X-Goog-Upload-Header-Content-Length") or 0),
                "data": b"",
            }
            self.send(
                h,
                200,
                {},
                headers={
                    "X-Goog-Upload-URL": f"{self.base_url}/upload/v1beta/files?upload_id={upload_id}",
                    "X-Goog-Upload-Status": "active",
                },
            )
            return
        upload_id = (query.get("upload_id") or [""])[0]
        upload = self._uploads.get(upload_id)
        if upload is None:
            self.send(h, 404, {"error": {"code": 404, "message": "unknown upload", "status": "NOT_FOUND"}})
            return
        with self._lock:
            self.requests["files.upload.chunk"] += 1
        upload["data"] += raw
        if "finalize" not in command:
            self.send(h, 200, {}, headers={"X-Goog-Upload-Status": "active"})
            return
        name = f"files/{upload_id[:12]}"
        with self._lock:
            self.files[name] = {"bytes": upload["data"], "mime": upload["mime"], "polls": 0}
        self.send(
            h,
            200,
            {"file": self._file_json(name, state="PROCESSING")},
            headers={"X-Goog-Upload-Status": "final"},
        )

    def _file_json(self, name: str, *, state: str) -> dict[str, Any]:
        info = self.files[name]
        return {
            "name": name,
            "mimeType": info["mime"],
            "sizeBytes": str(len(info["bytes"])),
            "uri": f"{self.base_url}/v1beta/{name}",
            "state": state,
        }

    def _get_file(self, h: BaseHTTPRequestHandler, name: str) -> None:
        with self._lock:
            self.requests["files.get"] += 1
            info = self.files.get(name)
            if info is not None:
                info["polls"] += 1
                state = "ACTIVE" if info["polls"] >= self.polls_until_active else "PROCESSING"
        if info is None:
            self.send(h, 404, {"error": {"code": 404, "message": "no such file", "status": "NOT_FOUND"}})
            return
        self.send(h, 200, self._file_json(name, state=state))

