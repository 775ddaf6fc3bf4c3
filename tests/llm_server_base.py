"""The shared core of the local LLM API doubles (see tests/llm_servers.py): a threaded HTTP server
on 127.0.0.1 with request counters, a scripted fault queue, latency, token usage, and the batch
jobs' bookkeeping that both providers' batch endpoints share. Each provider's wire protocol is a
subclass: tests/llm_server_gemini.py, tests/llm_server_openai.py."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlparse


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


class FakeServerBase:
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
        self.list_page_max: int | None = None  # the most jobs one list page holds, whatever the client asks
        self._unlisted_next = 0  # the next this many jobs made are not listed until release_listing()
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

    def __enter__(self) -> FakeServerBase:
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

    def hold_from_list(self, jobs: int = 1) -> None:
        """The next `jobs` batch jobs made are missing from the job list (an eventually consistent
        list that lags their create) until `release_listing`; reads of the job itself see it."""
        with self._lock:
            self._unlisted_next += jobs

    def release_listing(self) -> None:
        with self._lock:
            for job in self.batch_jobs.values():
                job.pop("unlisted", None)

    def page_size(self, asked: int) -> int:
        """How many jobs a list page holds when the client asks for `asked`."""
        return min(asked, self.list_page_max or asked)

    @property
    def billed_items(self) -> int:
        """Requests the provider bills: those a job answered (a cancelled or expired job bills what it
        answered before it ended; a failed item or job bills nothing). Jobs still running bill nothing yet."""
        with self._lock:
            jobs = [job for job in self.batch_jobs.values() if job["state"] in ("succeeded", "expired", "cancelled")]
        return sum(fate == "ok" for job in jobs for _, _, fate in self._batch_outcomes(job))

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
                if job["lists"] > self.list_lag and not job.get("unlisted"):
                    shown.append(job)
        return sorted(shown, key=lambda job: job["created"], reverse=True)

    def _new_batch_job(self, job_id: str, requests: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
        """Record a job of (custom id, request body) pairs; it ends as its plan says."""
        with self._lock:
            self.requests["batch.create"] += 1
            self.batch_items += len(requests)
            plan = self._batch_plans.popleft() if self._batch_plans else BatchPlan()
            job = {"id": job_id, "requests": requests, "plan": plan, "polls": 0, "state": "running",
                   "created": time.time(), "unlisted": self._unlisted_next > 0}
            self._unlisted_next = max(0, self._unlisted_next - 1)
            self.batch_jobs[job_id] = job
        return job

    def _poll_batch_job(self, job_id: str) -> dict[str, Any] | None:
        def poll(job: dict[str, Any]) -> None:
            job["polls"] += 1
            if job["polls"] >= job["plan"].polls_until_done:
                job["state"] = job["plan"].end

        return self._touch_running_job(job_id, "batch.get", poll)

    def _cancel_batch_job(self, job_id: str) -> dict[str, Any] | None:
        return self._touch_running_job(job_id, "batch.cancel", lambda job: job.update(state="cancelled"))

    def _touch_running_job(
        self, job_id: str, counter: str, change: Callable[[dict[str, Any]], None]
    ) -> dict[str, Any] | None:
        """Count a request about `job_id` under `counter`; apply `change` to the job while it runs."""
        with self._lock:
            self.requests[counter] += 1
            job = self.batch_jobs.get(job_id)
            if job is not None and job["state"] == "running":
                change(job)
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

