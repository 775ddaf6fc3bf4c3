"""Local test doubles of the remote LLM APIs, speaking their wire protocols on 127.0.0.1.

The real SDK clients (google-genai, openai) talk to these servers exactly as they would to the
providers, so the tests exercise our retry, cache, concurrency and parsing code against real
HTTP. The caption text a server returns is whatever the TEST tells it to return: this is a
test double of the remote API and must never be imported by production code.

Fault injection is scripted: `server.script(Fault.status(429, retry_after="0"), ...)` makes
the next generation requests fail in that order; `server.script_for("clip-3", Fault.malformed())`
applies only to requests whose body contains the marker, which keeps assertions deterministic
when a batch runs concurrently.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from haic_resources.llm.retry import RetryPolicy
from tests.timing import limit

# How the LLM tests build their clients: retries fast enough for a test, a clip small enough to
# send inline.
FAST_RETRY = RetryPolicy(max_attempts=5, base_delay_s=0.01, max_delay_s=0.05)
SMALL_CLIP = "imageio_realshort_cammotion_only.mp4"


@dataclass(frozen=True)
class Fault:
    """One scripted misbehaviour of the next matching request."""

    kind: str  # "status" | "timeout" | "malformed"
    status: int = 200
    retry_after: str | None = None
    sleep_s: float = 0.0

    @staticmethod
    def status_code(code: int, retry_after: str | None = None) -> Fault:
        return Fault(kind="status", status=code, retry_after=retry_after)

    @staticmethod
    def timeout(sleep_s: float) -> Fault:
        """Hold the request longer than the client's timeout, then answer (too late)."""
        return Fault(kind="timeout", sleep_s=sleep_s)

    @staticmethod
    def malformed() -> Fault:
        """A 200 whose body is not the JSON the API promises."""
        return Fault(kind="malformed")


@dataclass(frozen=True)
class BatchPlan:
    """How the next batch job a fake server receives ends: after `polls_until_done` status reads
    it is `end` (succeeded | expired | failed); requests whose body contains one of `fail_markers`
    are answered with an item error; an expired job answers only its first
    `answered_before_expiry` requests."""

    end: str = "succeeded"
    fail_markers: tuple[str, ...] = ()
    polls_until_done: int = 1
    answered_before_expiry: int = 0


Reply = str | Callable[[dict[str, Any]], str]


class _FakeServerBase:
    """Threaded HTTP server with a request counter, a fault script, optional latency, and the
    token usage it reports for every answer."""

    def __init__(
        self, reply: Reply = "ok", *, latency_s: float = 0.0, input_tokens: int = 1200, output_tokens: int = 150
    ) -> None:
        self.reply = reply
        self.latency_s = latency_s
        self.input_tokens = input_tokens
        self.output_tokens = output_tokens
        self.requests = Counter()  # path kind -> count
        self.bodies: list[dict[str, Any]] = []  # parsed JSON bodies of generation requests
        self.headers_seen: list[dict[str, str]] = []
        self._faults: deque[Fault] = deque()
        self._marked_faults: dict[str, deque[Fault]] = {}
        self._lock = threading.Lock()
        self._batch_plans: deque[BatchPlan] = deque()
        self.batch_jobs: dict[str, dict[str, Any]] = {}  # job id -> {"requests", "plan", "polls", "state"}
        self.batch_items = 0  # requests received inside batch jobs
        self._in_flight = 0
        self.max_in_flight = 0
        self._create_outcomes: deque[str] = deque()
        self.create_held = threading.Event()  # a held create has made its job (see script_batch_create)
        self.release_held = threading.Event()
        self.list_lag = 0  # a new job shows in the job list only after this many list requests
        self.batch_gets_unavailable = 0  # the next this many reads of one job answer 503
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in separate writes; with Nagle on, the body waits for
            # the client's delayed ACK (~40 ms per response), which would swamp timings.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass  # keep test output quiet; the counters are the record

            def do_POST(self) -> None:
                outer._handle(self, "POST")

            def do_GET(self) -> None:
                outer._handle(self, "GET")

            def do_DELETE(self) -> None:
                outer._handle(self, "DELETE")

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._httpd.request_queue_size = 256
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    # ---- lifecycle -------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> _FakeServerBase:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    # ---- scripting -------------------------------------------------------------------------

    def script(self, *faults: Fault) -> None:
        with self._lock:
            self._faults.extend(faults)

    def script_for(self, marker: str, *faults: Fault) -> None:
        with self._lock:
            self._marked_faults.setdefault(marker, deque()).extend(faults)

    def script_batch(self, *plans: BatchPlan) -> None:
        """How the next batch jobs end, in order (later jobs: succeed after one poll)."""
        with self._lock:
            self._batch_plans.extend(plans)

    def script_batch_create(self, *outcomes: str) -> None:
        """How the next batch create requests end after the job is made: "503" (the provider made
        the job, then answered 503), "hold" (it made the job, sets `create_held` and answers nothing
        until `release_held`, then drops the connection), "ok"."""
        with self._lock:
            self._create_outcomes.extend(outcomes)

    def _after_create(self, h: BaseHTTPRequestHandler, error_body: Callable[[int], dict[str, Any]]) -> bool:
        """True when a scripted outcome answered the create request instead of the job."""
        with self._lock:
            outcome = self._create_outcomes.popleft() if self._create_outcomes else "ok"
        if outcome == "503":
            self.send(h, 503, error_body(503))
            return True
        if outcome == "hold":
            self.create_held.set()
            self.release_held.wait(300)
            h.close_connection = True
            return True
        return False

    def _unavailable(self, h: BaseHTTPRequestHandler, error_body: Callable[[int], dict[str, Any]]) -> bool:
        """True when this read of a job is scripted to answer 503 (and it did)."""
        with self._lock:
            if self.batch_gets_unavailable <= 0:
                return False
            self.batch_gets_unavailable -= 1
        self.send(h, 503, error_body(503))
        return True

    def _listed_jobs(self) -> list[dict[str, Any]]:
        """The jobs a list request shows, newest first (a job younger than `list_lag` lists is not shown)."""
        with self._lock:
            self.requests["batch.list"] += 1
            shown = []
            for job in self.batch_jobs.values():
                job["lists"] = job.get("lists", 0) + 1
                if job["lists"] > self.list_lag:
                    shown.append(job)
        return sorted(shown, key=lambda job: job["created"], reverse=True)

    def _new_batch_job(self, job_id: str, requests: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
        """Record a job of (custom id, request body) pairs; it ends as its plan says."""
        with self._lock:
            self.requests["batch.create"] += 1
            self.batch_items += len(requests)
            plan = self._batch_plans.popleft() if self._batch_plans else BatchPlan()
            job = {"id": job_id, "requests": requests, "plan": plan, "polls": 0, "state": "running",
                   "created": time.time()}
            self.batch_jobs[job_id] = job
        return job

    def _poll_batch_job(self, job_id: str) -> dict[str, Any] | None:
        with self._lock:
            self.requests["batch.get"] += 1
            job = self.batch_jobs.get(job_id)
            if job is not None and job["state"] == "running":
                job["polls"] += 1
                if job["polls"] >= job["plan"].polls_until_done:
                    job["state"] = job["plan"].end
        return job

    def _cancel_batch_job(self, job_id: str) -> dict[str, Any] | None:
        with self._lock:
            self.requests["batch.cancel"] += 1
            job = self.batch_jobs.get(job_id)
            if job is not None and job["state"] == "running":
                job["state"] = "cancelled"
        return job

    def _batch_outcomes(self, job: dict[str, Any]) -> list[tuple[str, dict[str, Any], str]]:
        """(custom id, request body, "ok" | "failed" | "expired") of a finished job's requests."""
        plan: BatchPlan = job["plan"]
        out = []
        for n, (custom_id, body) in enumerate(job["requests"]):
            if job["state"] in ("expired", "cancelled") and n >= plan.answered_before_expiry:
                out.append((custom_id, body, "expired"))
            elif any(marker in json.dumps(body) for marker in plan.fail_markers):
                out.append((custom_id, body, "failed"))
            else:
                out.append((custom_id, body, "ok"))
        return out

    @property
    def total_requests(self) -> int:
        with self._lock:
            return sum(self.requests.values())

    def reset_counts(self) -> None:
        with self._lock:
            self.requests.clear()
            self.bodies.clear()
            self.headers_seen.clear()
            self.max_in_flight = 0

    def _next_fault(self, raw_body: bytes) -> Fault | None:
        with self._lock:
            for marker, queue in self._marked_faults.items():
                if queue and marker.encode() in raw_body:
                    return queue.popleft()
            return self._faults.popleft() if self._faults else None

    def _reply_text(self, body: dict[str, Any]) -> str:
        return self.reply(body) if callable(self.reply) else self.reply

    # ---- HTTP plumbing ---------------------------------------------------------------------

    def _handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        with self._lock:
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
        try:
            self.route(h, method, urlparse(h.path), raw)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a scripted timeout); nothing to answer
        finally:
            with self._lock:
                self._in_flight -= 1

    def route(self, h: BaseHTTPRequestHandler, method: str, url: Any, raw: bytes) -> None:
        raise NotImplementedError

    @staticmethod
    def send(
        h: BaseHTTPRequestHandler,
        status: int,
        body: bytes | dict[str, Any],
        *,
        headers: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> None:
        data = json.dumps(body).encode() if isinstance(body, dict) else body
        h.send_response(status)
        h.send_header("Content-Type", content_type)
        h.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            h.send_header(name, value)
        h.end_headers()
        h.wfile.write(data)
        h.wfile.flush()

    def _generation(
        self,
        h: BaseHTTPRequestHandler,
        kind: str,
        raw: bytes,
        success: Callable[[dict[str, Any]], dict[str, Any]],
        error_body: Callable[[int], dict[str, Any]],
    ) -> None:
        """Shared path of a generation request: count, latency, faults, then the answer."""
        with self._lock:
            self.requests[kind] += 1
            self.headers_seen.append({k.lower(): v for k, v in h.headers.items()})
        if self.latency_s:
            time.sleep(self.latency_s)
        fault = self._next_fault(raw)
        if fault is not None and fault.kind == "timeout":
            time.sleep(fault.sleep_s)
            # The client has hung up by now; answering anyway is what a slow server does.
            self.send(h, 200, {"late": True})
            return
        if fault is not None and fault.kind == "status":
            headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
            self.send(h, fault.status, error_body(fault.status), headers=headers)
            return
        if fault is not None and fault.kind == "malformed":
            self.send(h, 200, b'{"candidates": [ {"content": this is not json', content_type="application/json")
            return
        body = json.loads(raw or b"{}")
        with self._lock:
            self.bodies.append(body)
        self.send(h, 200, success(body))


class FakeGeminiServer(_FakeServerBase):
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
        size, start = int((query.get("pageSize") or ["50"])[0]), int((query.get("pageToken") or ["0"])[0])
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


class FakeOpenAIServer(_FakeServerBase):
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
        page = jobs[start:start + int((query.get("limit") or ["20"])[0])]
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


def prompt_text_of(body: dict[str, Any]) -> str:
    """All text parts of a Gemini or OpenAI request body, joined (for echoing replies)."""
    texts: list[str] = []
    for content in body.get("contents", []):
        texts += [p["text"] for p in content.get("parts", []) if "text" in p]
    for message in body.get("messages", []):
        content = message.get("content")
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            texts += [p["text"] for p in content if p.get("type") == "text"]
    return "\n".join(texts)


def client_options(api_key: str, cache_dir: Any, **overrides: Any) -> dict[str, Any]:
    """The constructor arguments every LLM test client shares: the key, a short timeout (a request
    that outlives it is retried, and counted again by the server), fast retries, the cache at
    `cache_dir`; `overrides` win."""
    return {"api_key": api_key, "timeout_s": limit(2.0), "retry": FAST_RETRY, "cache_dir": str(cache_dir),
            **overrides}


def assert_secret_absent_after_batch(secret: str, outcomes: list, *, caplog: Any, capfd: Any, cache_dir: Any) -> None:
    """After a batch that retried: the API key is in no log line, no cache file, no error message
    and no raw response we produced."""
    from pathlib import Path

    captured = capfd.readouterr()
    assert "retrying" in caplog.text  # the scan below reads real log output
    assert secret not in caplog.text + captured.out + captured.err, "API key leaked into logs"
    texts = [str(o.error) for o in outcomes if not o.ok] + [o.value.raw_response for o in outcomes if o.ok]
    for text in texts:
        assert secret not in text, "API key leaked into a result or error message"
    files = [p for p in Path(cache_dir).rglob("*") if p.is_file()]
    assert files, "expected cache files to scan"
    for path in files:
        assert secret.encode() not in path.read_bytes(), f"API key leaked into cache file {path.name}"
