"""OpenAI and OpenAI-compatible servers (vLLM, SGLang, Ollama) through the `openai` SDK.

Chat Completions is the one API every such server speaks, but not every server takes video.
So a clip goes as `frames_per_video` JPEG frames sampled uniformly over its length (image
parts are understood everywhere), plus — when `send_video_url` says the server accepts it, as
vLLM does — the whole clip as a `video_url` data URL; with `frames_per_video=0` the `video_url`
part alone (vLLM's and SGLang's standard video input). The SDK's own retries are off
(`max_retries=0`) so that every retry is ours and is counted.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import av
import cv2
import openai

from haic_core.accumulation.sampling import uniform_timestamps
from haic_resources.llm.client import LLMClient, video_mime_type
from haic_resources.llm.response_cap import CappedTransport, cap_error_in, check_reply_caps
from haic_resources.llm.retry import parse_retry_after, sdk_error, status_error
from haic_resources.llm.types import GenerationSettings, LLMError, PreparedCall, ProviderReply
from haic_resources.video.frame_reader import read_frames_at
from haic_resources.video.probe import VideoProbeError, probe_video_in_process

log = logging.getLogger(__name__)


def sample_frames_jpeg(
    video_path: Path, count: int, *, long_side: int = 768, jpeg_quality: int = 85
) -> list[bytes]:
    """Frames at `count` instants spread uniformly over the clip (centres of `count` equal
    segments of its duration), as JPEG bytes, downscaled so the long side is at most `long_side`.

    Read through the project's frame reader: each instant gets the frame nearest to it on the
    video's own clock, so variable-frame-rate and WebM clips are sampled at the right times. A
    frame nearest to two instants (a clip of fewer than `count` frames) is sent once. Raises
    `LLMError('bad_input')` if the file yields no frame.
    """
    if count < 1:
        raise ValueError("count must be >= 1")
    try:
        probe = probe_video_in_process(str(video_path))
        # Shrink only: a clip smaller than `long_side` is sent at its own size.
        resize_to = long_side if max(probe.width, probe.height) > long_side else None
        sample = read_frames_at(video_path, uniform_timestamps(0.0, probe.duration_s, count), 0.0,
                                probe.duration_s, long_side=resize_to)
    except (VideoProbeError, ValueError, av.error.FFmpegError) as exc:
        why = exc.reason if isinstance(exc, VideoProbeError) else type(exc).__name__
        raise LLMError("bad_input", f"no decodable frame in {video_path.name}: {why}") from None

    encoded: list[bytes] = []
    last_pts_s = None
    for frame in sample.frames:
        if frame.pts_s == last_pts_s:
            continue  # the frame nearest to the previous instant too: sent once
        last_pts_s = frame.pts_s
        bgr = cv2.cvtColor(frame.image, cv2.COLOR_RGB2BGR)
        ok, buffer = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
        if not ok:
            raise LLMError("bad_input", f"could not encode a frame of {video_path.name} as JPEG")
        encoded.append(buffer.tobytes())
    return encoded


def _data_url(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


@dataclass(frozen=True)
class _PreparedVideo:
    parts: list[dict[str, Any]]  # Chat Completions content parts (images, optional video)


class OpenAIClient(LLMClient):
    provider = "openai"

    def __init__(
        self,
        *,
        api_key: str,
        model: str,
        base_url: str | None = None,
        timeout_s: float = 120.0,
        frames_per_video: int = 8,
        frame_long_side: int = 768,
        send_video_url: bool = False,
        json_mode: bool = True,
        **client_options: Any,
    ) -> None:
        """`client_options`: what every `LLMClient` takes (cache_dir, concurrency, retry, prices)."""
        super().__init__(model=model, secrets=(api_key,), **client_options)
        if not api_key:
            # Local servers ignore the key but the SDK requires one; pass any placeholder.
            raise ValueError("OpenAIClient needs an api_key (any non-empty value for local servers)")
        if frames_per_video < 1 and not send_video_url:
            raise ValueError("OpenAIClient sends a clip as frames, as a video_url, or both: frames_per_video=0 "
                             "needs send_video_url")
        self.frames_per_video = frames_per_video
        self.frame_long_side = frame_long_side
        self.send_video_url = send_video_url
        # response_format=json_object; some OpenAI-compatible servers reject it.
        self.json_mode = json_mode

        def sdk_client(max_bytes: int) -> openai.OpenAI:
            # The SDK's own httpx settings, with a transport that stops reading at max_bytes.
            return openai.OpenAI(api_key=api_key, base_url=base_url, timeout=timeout_s, max_retries=0,
                                 http_client=openai.DefaultHttpxClient(transport=CappedTransport(max_bytes)))

        self._client = sdk_client(self.max_response_bytes)
        # Batch jobs: their output file holds every item's answer (response_cap.py).
        self._batch_client = sdk_client(self.max_batch_result_bytes)

    # ---- errors ----------------------------------------------------------------------------

    @staticmethod
    def _as_llm_error(exc: Exception) -> LLMError:
        during = "chat.completions"
        capped = cap_error_in(exc)
        if capped is not None:
            return capped
        if isinstance(exc, openai.APIStatusError):
            headers = exc.response.headers if exc.response is not None else {}
            retry_after = parse_retry_after(headers.get("retry-after"))
            retry_after_ms = headers.get("retry-after-ms")
            if retry_after is None and retry_after_ms:
                retry_after = parse_retry_after(retry_after_ms)
                retry_after = retry_after / 1000 if retry_after is not None else None
            message = str(exc.body.get("message") or "") if isinstance(exc.body, dict) else ""
            return status_error(during, exc.status_code, message, retry_after)
        return sdk_error(exc, during, unreadable=(openai.APIResponseValidationError, json.JSONDecodeError, ValueError))

    # ---- video -----------------------------------------------------------------------------

    def _request_shape(self, *, with_video: bool) -> dict[str, Any]:
        shape: dict[str, Any] = {"api": "chat.completions", "json_mode": self.json_mode}
        if with_video:
            shape |= {
                "frames_per_video": self.frames_per_video,
                "frame_long_side": self.frame_long_side,
                "send_video_url": self.send_video_url,
            }
        return shape

    def _prepare_video(self, video_path: Path) -> _PreparedVideo:
        frames = (sample_frames_jpeg(video_path, self.frames_per_video, long_side=self.frame_long_side)
                  if self.frames_per_video > 0 else [])
        parts: list[dict[str, Any]] = []
        if self.send_video_url:
            parts.append(
                {
                    "type": "video_url",
                    "video_url": {"url": _data_url(video_mime_type(video_path), video_path.read_bytes())},
                }
            )
        parts += [
            {"type": "image_url", "image_url": {"url": _data_url("image/jpeg", jpeg)}} for jpeg in frames
        ]
        return _PreparedVideo(parts)

    # ---- requests --------------------------------------------------------------------------

    def _body(self, content: list[dict[str, Any]], settings: GenerationSettings, *, json_output: bool) -> dict[str, Any]:
        """The Chat Completions request, online or as a batch line."""
        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": "user", "content": content}],
            "temperature": settings.temperature,
            "max_tokens": settings.max_output_tokens,
        }
        if settings.top_p is not None:
            kwargs["top_p"] = settings.top_p
        if settings.seed is not None:
            kwargs["seed"] = settings.seed
        if json_output and self.json_mode:
            kwargs["response_format"] = {"type": "json_object"}
        return kwargs

    def _complete(
        self, content: list[dict[str, Any]], settings: GenerationSettings, *, json_output: bool
    ) -> ProviderReply:
        try:
            response = self._client.chat.completions.create(**self._body(content, settings, json_output=json_output))
        except Exception as exc:  # noqa: BLE001 - every SDK failure becomes a typed LLMError
            raise self._as_llm_error(exc) from None
        return self._reply(response, settings)

    def _reply(self, response: Any, settings: GenerationSettings) -> ProviderReply:
        """What one answer says, online or from a batch job's output file."""
        # A 200 with a non-JSON body comes back as a plain string, not a ChatCompletion.
        if not isinstance(response, openai.types.chat.ChatCompletion) or not response.choices:
            raise LLMError("malformed_response", "chat.completions: response has no choices")
        choice = response.choices[0]
        text = choice.message.content if choice.message else None
        if not text or not text.strip():
            raise LLMError("blocked", f"empty answer (finish reason: {choice.finish_reason})")
        usage = response.usage
        reply = ProviderReply(
            text=text,
            raw_response=response.model_dump_json(exclude_none=True),
            model=response.model or self.model,
            input_tokens=int(usage.prompt_tokens if usage else 0),
            output_tokens=int(usage.completion_tokens if usage else 0),
        )
        return check_reply_caps(reply, settings.max_output_tokens, choice.finish_reason, self.max_response_bytes)

    def _content(self, prepared: _PreparedVideo | None, prompt_text: str) -> list[dict[str, Any]]:
        return [*(prepared.parts if prepared is not None else []), {"type": "text", "text": prompt_text}]

    def _send_video(
        self, prepared: _PreparedVideo, prompt_text: str, settings: GenerationSettings
    ) -> ProviderReply:
        return self._complete(self._content(prepared, prompt_text), settings, json_output=False)

    def _send_text(
        self, prompt_text: str, settings: GenerationSettings, *, json_output: bool
    ) -> ProviderReply:
        return self._complete(self._content(None, prompt_text), settings, json_output=json_output)

    # ---- the Batch API (files + batches, JSONL in and out) -------------------------------

    def _api(self, during: str, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except Exception as exc:  # noqa: BLE001 - every SDK failure becomes a typed LLMError
            error = self._as_llm_error(exc)
            error.replace_reason(error.reason.replace("chat.completions", during, 1))
            raise error from None

    # The Batch API takes input files of up to 200 MB.
    batch_max_bytes = 190 * 1024 * 1024

    def _batch_request_bytes(self, call: PreparedCall) -> int:
        # JPEG frames at long side 768 are about 100 KB each as base64; the video only if sent.
        video = super()._batch_request_bytes(call) if self.send_video_url else len(call.prompt_text) + 512
        return video + (self.frames_per_video * 100_000 if call.video_path is not None else 0)

    def _batch_submit(self, calls: Sequence[PreparedCall], display_name: str) -> str:
        lines = []
        for call in calls:
            prepared = self._prepare_video(call.video_path) if call.video_path is not None else None
            body = self._body(self._content(prepared, call.prompt_text), call.settings, json_output=call.json_output)
            lines.append(json.dumps({"custom_id": call.key, "method": "POST", "url": "/v1/chat/completions",
                                     "body": body}))
        data = ("\n".join(lines) + "\n").encode("utf-8")
        uploaded = self._api("files.create", lambda: self._batch_client.files.create(
            file=(f"{display_name}.jsonl", data, "application/jsonl"), purpose="batch"))
        batch = self._api("batches.create", lambda: self._batch_client.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h",
            metadata={"name": display_name[:64]}))
        return str(batch.id)

    def _batch_state(self, job_id: str) -> tuple[str, dict[str, Any]]:
        batch = self._api("batches.retrieve", lambda: self._batch_client.batches.retrieve(job_id))
        counts = batch.request_counts.model_dump() if batch.request_counts else {}
        return _BATCH_STATES.get(batch.status, "running"), {"state": batch.status, **counts}

    def _batch_results(self, job_id: str) -> dict[str, Any]:
        batch = self._api("batches.retrieve", lambda: self._batch_client.batches.retrieve(job_id))
        answers: dict[str, Any] = {}
        for file_id in (batch.output_file_id, batch.error_file_id):
            if not file_id:
                continue
            text = self._api("files.content", lambda: self._batch_client.files.content(file_id).text)
            for line in text.splitlines():
                if not line.strip():
                    continue
                item = json.loads(line)
                response, failure = item.get("response") or {}, item.get("error")
                if failure or response.get("status_code") != 200:
                    why = (failure or {}).get("message") or json.dumps(response.get("body"))[:160]
                    kind = "batch_expired" if (failure or {}).get("code") == "batch_expired" else "batch_failed"
                    answers[item["custom_id"]] = LLMError(kind, f"batch item: {response.get('status_code', '')} {why}"[:200])
                else:
                    answers[item["custom_id"]] = response["body"]
        return answers

    def _batch_reply(self, call: PreparedCall, raw: Any) -> ProviderReply:
        try:
            response = openai.types.chat.ChatCompletion.model_validate(raw)
        except ValueError:
            raise LLMError("malformed_response", "batch output line is not a chat completion") from None
        return self._reply(response, call.settings)

    def _batch_cancel(self, job_id: str) -> None:
        self._api("batches.cancel", lambda: self._batch_client.batches.cancel(job_id))

    def _batch_list(self, created_after: datetime) -> list[tuple[str, str, str]]:
        def newest_first() -> list[tuple[str, str, str]]:
            found = []
            for page in self._batch_client.batches.list(limit=100).iter_pages():  # follows has_more / after
                recent = [batch for batch in page.data if batch.created_at >= created_after.timestamp()]
                found += [(str(batch.id), str((batch.metadata or {}).get("name", "")),
                           _BATCH_STATES.get(batch.status, "running")) for batch in recent]
                if page.data and not recent:  # newest first: a page of only older ones ends the look
                    break
            return found

        return self._api("batches.list", newest_first)


# The Batch API's statuses -> ours (haic_resources/llm/batch.py).
_BATCH_STATES = {"validating": "pending", "in_progress": "running", "finalizing": "running", "cancelling": "running",
                 "completed": "succeeded", "failed": "failed", "expired": "expired", "cancelled": "cancelled"}
