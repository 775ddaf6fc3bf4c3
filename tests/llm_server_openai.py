"""A local double of the OpenAI API (and OpenAI-compatible servers such as vLLM) on 127.0.0.1, for
the real openai client: chat completions and the Batch API. See tests/llm_servers.py."""

from __future__ import annotations

import json
import time
import uuid
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs

from tests.llm_server_base import FakeServerBase, Reply


class FakeOpenAIServer(FakeServerBase):
    """`POST /v1/chat/completions` as OpenAI and OpenAI-compatible servers (vLLM) speak it, and the
    Batch API: `/v1/files` (multipart upload, content) and `/v1/batches` (create, get, cancel)."""

    def __init__(self, reply: Reply = "ok", **server_options: Any) -> None:
        super().__init__(reply, **server_options)
        self.files: dict[str, bytes] = {}

    def _create_file(self, h: BaseHTTPRequestHandler, raw: bytes) -> None:
        """A multipart/form-data upload (fields `purpose` and `file`), as the SDK sends it."""
        boundary = (h.headers.get("Content-Type") or "").split("boundary=")[-1].strip('"').encode()
        data = b""
        for part in raw.split(b"--" + boundary):
            head, _, content = part.partition(b"\r\n\r\n")
            if b'name="file"' in head:
                data = content[:-2] if content.endswith(b"\r\n") else content
        file_id = f"file-{uuid.uuid4().hex[:12]}"
        with self._lock:
            self.requests["files.create"] += 1
            self.files[file_id] = data
        self.send(h, 200, {"id": file_id, "object": "file", "bytes": len(data), "created_at": int(time.time()),
                           "filename": "batch.jsonl", "purpose": "batch", "status": "processed"})

    _BATCH_STATUS = {"running": "in_progress", "succeeded": "completed", "failed": "failed", "expired": "expired",
                     "cancelled": "cancelled"}

    def _batch_json(self, job: dict[str, Any]) -> dict[str, Any]:
        """The Batch object; a finished job gets its output and error files (JSONL by custom_id)."""
        body: dict[str, Any] = {"id": job["id"], "object": "batch", "endpoint": "/v1/chat/completions",
                                "input_file_id": job["input_file_id"], "completion_window": "24h",
                                "status": self._BATCH_STATUS[job["state"]], "created_at": int(job["created"]),
                                "metadata": job.get("metadata")}
        if job["state"] == "running" or job["state"] == "failed":
            body["request_counts"] = {"total": len(job["requests"]), "completed": 0, "failed": 0}
            return body
        output, errors = [], []
        for custom_id, request, fate in self._batch_outcomes(job):
            line: dict[str, Any] = {"id": f"batch_req_{uuid.uuid4().hex[:8]}", "custom_id": custom_id}
            if fate == "ok":
                output.append({**line, "response": {"status_code": 200, "request_id": "r",
                                                    "body": self._success(request)}, "error": None})
            elif fate == "failed":
                errors.append({**line, "response": {"status_code": 500, "request_id": "r",
                                                    "body": self._error(500)}, "error": None})
            else:
                errors.append({**line, "response": None, "error": {
                    "code": "batch_expired",
                    "message": "This request could not be executed before the completion window expired."}})
        for name, lines in (("output_file_id", output), ("error_file_id", errors)):
            if lines:
                key = job.setdefault(name, f"file-{uuid.uuid4().hex[:12]}")
                with self._lock:
                    self.files[key] = "".join(json.dumps(x) + "\n" for x in lines).encode()
                body[name] = key
        body["request_counts"] = {"total": len(job["requests"]), "completed": len(output), "failed": len(errors)}
        return body

    def _list_batches(self, h: BaseHTTPRequestHandler, query: dict[str, list[str]]) -> None:
        """`GET /v1/batches?limit=&after=`: newest first, a cursor page at a time."""
        jobs = self._listed_jobs()
        ids = [job["id"] for job in jobs]
        after = (query.get("after") or [""])[0]
        start = ids.index(after) + 1 if after in ids else 0
        page = jobs[start:start + self.page_size(int((query.get("limit") or ["20"])[0]))]
        self.send(h, 200, {"object": "list", "data": [self._batch_json(job) for job in page],
                           "first_id": page[0]["id"] if page else None, "last_id": page[-1]["id"] if page else None,
                           "has_more": start + len(page) < len(jobs)})

    def _success(self, body: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex[:8]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "unknown"),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": self._reply_text(body)},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": self.input_tokens,
                "completion_tokens": self.output_tokens,
                "total_tokens": self.input_tokens + self.output_tokens,
            },
        }

    @staticmethod
    def _error(code: int) -> dict[str, Any]:
        return {"error": {"message": f"scripted {code}", "type": "server_error", "code": code}}

    def route(self, h: BaseHTTPRequestHandler, method: str, url: Any, raw: bytes) -> None:
        path = url.path
        if method == "POST" and path == "/v1/chat/completions":
            self._generation(h, "chat.completions", raw, self._success, self._error)
        elif method == "POST" and path == "/v1/files":
            self._create_file(h, raw)
        elif method == "GET" and path.startswith("/v1/files/") and path.endswith("/content"):
            data = self.files.get(path[len("/v1/files/"):-len("/content")])
            with self._lock:
                self.requests["files.content"] += 1
            if data is None:
                self.send(h, 404, {"error": {"message": "no such file", "type": "invalid_request_error"}})
            else:
                self.send(h, 200, data, content_type="application/octet-stream")
        elif method == "POST" and path == "/v1/batches":
            body = json.loads(raw or b"{}")
            lines = [json.loads(line) for line in self.files.get(body.get("input_file_id"), b"").splitlines() if line]
            job = self._new_batch_job(f"batch_{uuid.uuid4().hex[:12]}", [(x["custom_id"], x["body"]) for x in lines])
            job["input_file_id"], job["metadata"] = body.get("input_file_id"), body.get("metadata")
            if not self._after_create(h, self._error):
                self.send(h, 200, self._batch_json(job))
        elif method == "GET" and path == "/v1/batches":
            self._list_batches(h, parse_qs(url.query))
        elif method == "GET" and path.startswith("/v1/batches/"):
            if not self._unavailable(h, self._error):
                job = self._poll_batch_job(path[len("/v1/batches/"):])
                self.send(h, 200, self._batch_json(job)) if job else self.send(h, 404, self._error(404))
        elif method == "POST" and path.startswith("/v1/batches/") and path.endswith("/cancel"):
            job = self._cancel_batch_job(path[len("/v1/batches/"):-len("/cancel")])
            self.send(h, 200, self._batch_json(job)) if job else self.send(h, 404, self._error(404))
        else:
            self.send(h, 404, {"error": {"message": f"no route {url.path}", "type": "not_found"}})
