"""Gemini through the `google-genai` SDK (the paper captioned HAICTrain with Gemini-1.5-Pro).

A video up to `inline_limit_bytes` (Gemini's documented 20 MB request limit by default) travels
inline in the request; a larger one goes through the Files API once per call (resumable
upload, wait until ACTIVE, reference by URI, delete afterwards). The SDK's own retries are
switched off (`HttpRetryOptions(attempts=1)`) so that every retry is ours and is counted.
"""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from haic_resources.llm.client import LLMClient, video_mime_type
from haic_resources.llm.response_cap import cap_error_in, capped_http_client, check_reply_caps
from haic_resources.llm.retry import call_with_retries, parse_retry_after, sdk_error, status_error
from haic_resources.llm.types import GenerationSettings, LLMError, PreparedCall, ProviderReply

log = logging.getLogger(__name__)

DEFAULT_INLINE_LIMIT_BYTES = 20 * 1024 * 1024


@dataclass(frozen=True)
class _PreparedVideo:
    """How the video goes into the request: inline bytes, or an uploaded file's URI."""

    part: types.Part
    uploaded_name: str | None = None


class GeminiClient(LLMClient):
    provider = "gemini"

    def __init__(
        self,
        *,
        api_key: str,
        model: str = "gemini-2.5-pro",
        base_url: str | None = None,
        api_version: str = "v1beta",
        timeout_s: float = 120.0,
        inline_limit_bytes: int = DEFAULT_INLINE_LIMIT_BYTES,
        file_poll_interval_s: float = 2.0,
        file_active_timeout_s: float = 300.0,
        delete_uploaded_files: bool = True,
        **client_options: Any,
    ) -> None:
        """`client_options`: what every `LLMClient` takes (cache_dir, concurrency, retry, prices)."""
        super().__init__(model=model, secrets=(api_key,), **client_options)
        if not api_key:
            raise ValueError("GeminiClient needs an api_key")
        self.inline_limit_bytes = inline_limit_bytes
        self.file_poll_interval_s = file_poll_interval_s
        self.file_active_timeout_s = file_active_timeout_s
        self.delete_uploaded_files = delete_uploaded_files

        def sdk_client(max_bytes: int):
            return genai.Client(
                api_key=api_key,
                http_options=types.HttpOptions(
                    base_url=base_url,
                    # v1beta: the Files API and video features live there; the SDK's own
                    # default (v1) lacks them.
                    api_version=api_version,
                    timeout=int(timeout_s * 1000),  # the SDK takes milliseconds
                    retry_options=types.HttpRetryOptions(attempts=1),
                    # Responses stop being read at max_bytes (haic_resources/llm/response_cap.py).
                    httpx_client=capped_http_client(max_bytes, timeout_s),
                ),
            )

        self._client = sdk_client(self.max_response_bytes)
        # Batch jobs: a finished job carries its inlined answers, a file job's results file all of them.
        self._batch_client = sdk_client(self.max_batch_result_bytes)

    # ---- errors ----------------------------------------------------------------------------

    @staticmethod
    def _as_llm_error(exc: Exception, during: str) -> LLMError:
        capped = cap_error_in(exc)
        if capped is not None:
            return capped
        if isinstance(exc, genai_errors.APIError):
            headers = getattr(getattr(exc, "response", None), "headers", None) or {}
            retry_after = parse_retry_after(headers.get("retry-after")) if headers else None
            return status_error(during, int(exc.code or 0), str(exc.message or exc.status or ""), retry_after)
        return sdk_error(exc, during, unreadable=(json.JSONDecodeError, ValueError, KeyError, TypeError))

    # ---- video -----------------------------------------------------------------------------

    def _request_shape(self, *, with_video: bool) -> dict[str, Any]:
        # Inline vs uploaded does not change what the model sees, so it is not in the key.
        return {"api": "generateContent"}

    def _prepare_video(self, video_path: Path) -> _PreparedVideo:
        mime = video_mime_type(video_path)
        size = video_path.stat().st_size
        if size <= self.inline_limit_bytes:
            return _PreparedVideo(types.Part.from_bytes(data=video_path.read_bytes(), mime_type=mime))
        uploaded, _ = call_with_retries(lambda: self._upload(video_path, mime), self.retry)
        return _PreparedVideo(
            types.Part.from_uri(file_uri=uploaded.uri, mime_type=uploaded.mime_type or mime),
            uploaded_name=uploaded.name,
        )

    def _upload(self, video_path: Path, mime: str) -> types.File:
        """Upload and wait for ACTIVE; one attempt (the caller retries)."""
        with self._slots:
            try:
                uploaded = self._client.files.upload(
                    file=str(video_path), config=types.UploadFileConfig(mime_type=mime)
                )
                deadline = time.monotonic() + self.file_active_timeout_s
                while uploaded.state != types.FileState.ACTIVE:
                    if uploaded.state == types.FileState.FAILED:
                        raise LLMError("bad_input", f"Files API could not process {video_path.name}")
                    if time.monotonic() > deadline:
                        raise LLMError(
                            "timeout",
                            f"uploaded {video_path.name} not ACTIVE after {self.file_active_timeout_s:.0f}s",
                        )
                    time.sleep(self.file_poll_interval_s)
                    uploaded = self._client.files.get(name=uploaded.name)
            except Exception as exc:  # noqa: BLE001 - every SDK failure becomes a typed LLMError
                raise self._as_llm_error(exc, "files.upload") from None
        log.info("uploaded %s to the Gemini Files API (%s)", video_path.name, uploaded.name)
        return uploaded

    def _release_video(self, prepared: _PreparedVideo) -> None:
        if prepared.uploaded_name and self.delete_uploaded_files:
            try:
                self._client.files.delete(name=prepared.uploaded_name)
            except Exception as exc:  # noqa: BLE001 - files expire on their own after 48 h
                log.warning("could not delete uploaded file %s: %s", prepared.uploaded_name, type(exc).__name__)

    # ---- requests --------------------------------------------------------------------------

    def _config(self, settings: GenerationSettings, *, json_output: bool) -> types.GenerateContentConfig:
        return types.GenerateContentConfig(
            temperature=settings.temperature,
            max_output_tokens=settings.max_output_tokens,
            top_p=settings.top_p,
            seed=settings.seed,
            response_mime_type="application/json" if json_output else None,
            # We send no tools; turning automatic function calling off also silences the
            # SDK's per-call "AFC is enabled" log line.
            automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
        )

    def _generate(self, parts: list[types.Part], config: types.GenerateContentConfig) -> ProviderReply:
        try:
            response = self._client.models.generate_content(
                model=self.model,
                contents=[types.Content(role="user", parts=parts)],
                config=config,
            )
        except Exception as exc:  # noqa: BLE001 - every SDK failure becomes a typed LLMError
            raise self._as_llm_error(exc, "generateContent") from None
        return self._reply(response, config.max_output_tokens)

    def _reply(self, response: types.GenerateContentResponse, max_output_tokens: int | None) -> ProviderReply:
        """What one answer says, online or from a batch job."""
        text = _response_text(response)
        usage = response.usage_metadata
        candidate = response.candidates[0]
        finish = candidate.finish_reason.value if candidate.finish_reason else None
        reply = ProviderReply(
            text=text,
            raw_response=response.model_dump_json(exclude_none=True, exclude={"sdk_http_response"}),
            model=response.model_version or self.model,
            input_tokens=int(getattr(usage, "prompt_token_count", 0) or 0),
            output_tokens=int(getattr(usage, "candidates_token_count", 0) or 0)
            + int(getattr(usage, "thoughts_token_count", 0) or 0),
        )
        return check_reply_caps(reply, max_output_tokens, finish, self.max_response_bytes)

    def _parts(self, prepared: _PreparedVideo | None, prompt_text: str) -> list[types.Part]:
        # Video before text, as Gemini's documentation recommends for video prompts.
        text = types.Part.from_text(text=prompt_text)
        return [prepared.part, text] if prepared is not None else [text]

    def _send_video(
        self, prepared: _PreparedVideo, prompt_text: str, settings: GenerationSettings
    ) -> ProviderReply:
        return self._generate(self._parts(prepared, prompt_text), self._config(settings, json_output=False))

    def _send_text(
        self, prompt_text: str, settings: GenerationSettings, *, json_output: bool
    ) -> ProviderReply:
        return self._generate(self._parts(None, prompt_text), self._config(settings, json_output=json_output))

    # ---- batch mode (client.batches: inline requests, or a JSONL file) ---------------------

    # Gemini takes inline batch requests of up to 20 MB; a job over that goes as one JSONL file
    # through the Files API (up to 2 GB). A clip over the inline limit is a URI either way.
    batch_inline_max_bytes = 19 * 1024 * 1024
    batch_max_bytes = 1900 * 1024 * 1024

    def _batch_request_bytes(self, call: PreparedCall) -> int:
        if call.video_path is not None and call.video_path.stat().st_size > self.inline_limit_bytes:
            return len(call.prompt_text.encode("utf-8")) + 1024
        return super()._batch_request_bytes(call)

    def _batch_submit(self, calls: Sequence[PreparedCall], display_name: str) -> str:
        """Inline requests, each the online request's parts and config, keyed by the cache key.
        A clip over the inline limit goes through the Files API and stays there for the job
        (uploaded files expire on their own after 48 h)."""
        requests = []
        for call in calls:
            prepared = self._prepare_video(call.video_path) if call.video_path is not None else None
            config = self._config(call.settings, json_output=call.json_output)
            config.automatic_function_calling = None  # a client-side setting; not part of a batch request
            requests.append(types.InlinedRequest(
                model=self.model, contents=[types.Content(role="user", parts=self._parts(prepared, call.prompt_text))],
                config=config, metadata={"key": call.key}))
        size = sum(self._batch_request_bytes(call) for call in calls)
        src = requests if size <= self.batch_inline_max_bytes else self._batch_file(requests, display_name)
        try:
            job = self._batch_client.batches.create(model=self.model, src=src,
                                                    config=types.CreateBatchJobConfig(display_name=display_name))
        except Exception as exc:  # noqa: BLE001 - every SDK failure becomes a typed LLMError
            raise self._as_llm_error(exc, "batches.create") from None
        return str(job.name)

    def _batch_file(self, requests: list[types.InlinedRequest], display_name: str) -> str:
        """The requests as one JSONL file (`{"key", "request"}` a line, each request in the SDK's own
        wire form, as it would send it inline), uploaded through the Files API; its name."""
        from google.genai import _common  # the SDK's own serializer of a request, as batches.create uses it
        from google.genai.batches import _InlinedRequest_to_mldev

        lines = []
        for request in requests:
            wire = _InlinedRequest_to_mldev(self._batch_client._api_client, request)["request"]
            wire = _common.encode_unserializable_types(_common.convert_to_dict(wire))
            lines.append(json.dumps({"key": request.metadata["key"], "request": wire}))
        try:
            uploaded = self._batch_client.files.upload(file=io.BytesIO("\n".join(lines).encode("utf-8")),
                                                       config=types.UploadFileConfig(display_name=display_name,
                                                                                     mime_type="jsonl"))
        except Exception as exc:  # noqa: BLE001
            raise self._as_llm_error(exc, "files.upload (batch input)") from None
        return str(uploaded.name)

    def _batch_job(self, job_id: str) -> types.BatchJob:
        try:
            return self._batch_client.batches.get(name=job_id)
        except Exception as exc:  # noqa: BLE001
            raise self._as_llm_error(exc, "batches.get") from None

    def _batch_state(self, job_id: str) -> tuple[str, dict[str, Any]]:
        job = self._batch_job(job_id)
        state = job.state.value if job.state else "JOB_STATE_UNSPECIFIED"
        return _BATCH_STATES.get(state, "running"), {"state": state}

    def _batch_results(self, job_id: str) -> dict[str, Any]:
        job = self._batch_job(job_id)
        answers: dict[str, Any] = {}
        if job.dest is not None and job.dest.file_name:
            return self._batch_file_results(job.dest.file_name)
        for item in (job.dest.inlined_responses or []) if job.dest else []:
            key = (item.metadata or {}).get("key")
            if not key:
                continue
            if item.error is not None or item.response is None:
                code = getattr(item.error, "code", None) or 0
                message = getattr(item.error, "message", "") or ""
                answers[key] = LLMError("batch_failed", f"batch item: {code} {message}"[:200])
            else:
                answers[key] = item.response
        return answers

    def _batch_file_results(self, file_name: str) -> dict[str, Any]:
        """A file job's answers: its results file, one `{"key", "response" | "error"}` a line."""
        try:
            data = self._batch_client.files.download(file=file_name)
        except Exception as exc:  # noqa: BLE001
            raise self._as_llm_error(exc, "files.download (batch results)") from None
        answers: dict[str, Any] = {}
        for line in data.decode("utf-8").splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            key = item.get("key")
            if not key:
                continue
            if item.get("error") is not None or item.get("response") is None:
                error = item.get("error") or {}
                answers[key] = LLMError("batch_failed", f"batch item: {error.get('code', 0)} "
                                                        f"{error.get('message', '')}"[:200])
            else:
                answers[key] = types.GenerateContentResponse.model_validate(item["response"])
        return answers

    def _batch_reply(self, call: PreparedCall, raw: Any) -> ProviderReply:
        return self._reply(raw, call.settings.max_output_tokens)

    def _batch_cancel(self, job_id: str) -> None:
        try:
            self._batch_client.batches.cancel(name=job_id)
        except Exception as exc:  # noqa: BLE001
            raise self._as_llm_error(exc, "batches.cancel") from None

    def _batch_list(self, created_after: datetime) -> list[tuple[str, str, str]]:
        found = []
        try:
            pager = self._batch_client.batches.list(config=types.ListBatchJobsConfig(page_size=100))
            while True:  # page by page (the server may send fewer than asked): every page, back to created_after
                recent = [job for job in pager.page if job.create_time is None or job.create_time >= created_after]
                found += [(str(job.name), job.display_name or "",
                           _BATCH_STATES.get(job.state.value if job.state else "", "running")) for job in recent]
                # Jobs come newest first (not promised in order within a page): a page of only older ones ends it.
                if (pager.page and not recent) or not pager.config.get("page_token"):
                    break
                pager.next_page()
        except Exception as exc:  # noqa: BLE001
            raise self._as_llm_error(exc, "batches.list") from None
        return found


# google-genai's job states -> ours (haic_resources/llm/batch.py).
_BATCH_STATES = {"JOB_STATE_PENDING": "pending", "JOB_STATE_QUEUED": "pending", "JOB_STATE_RUNNING": "running",
                 "JOB_STATE_SUCCEEDED": "succeeded", "JOB_STATE_PARTIALLY_SUCCEEDED": "succeeded",
                 "JOB_STATE_FAILED": "failed", "JOB_STATE_EXPIRED": "expired", "JOB_STATE_CANCELLED": "cancelled",
                 "JOB_STATE_CANCELLING": "running"}


def _response_text(response: types.GenerateContentResponse) -> str:
    """The answer's text, or `LLMError('blocked')` naming why there is none."""
    candidates = response.candidates or []
    if not candidates:
        feedback = response.prompt_feedback
        why = getattr(feedback, "block_reason", None) if feedback else None
        raise LLMError("blocked", f"no candidates (block reason: {why or 'none given'})")
    candidate = candidates[0]
    parts = candidate.content.parts if candidate.content and candidate.content.parts else []
    text = "".join(p.text for p in parts if p.text and not p.thought)
    if not text.strip():
        reason = candidate.finish_reason.value if candidate.finish_reason else "unknown"
        raise LLMError("blocked", f"empty answer (finish reason: {reason})")
    return text
