"""OpenAI and OpenAI-compatible servers (vLLM, SGLang, Ollama) through the `openai` SDK.

Chat Completions is the one API every such server speaks, but not every server takes video.
So a clip goes as `frames_per_video` JPEG frames sampled uniformly over its length (image
parts are understood everywhere), plus — when `send_video_url` says the server accepts it, as
vLLM does — the whole clip as a `video_url` data URL. The SDK's own retries are off
(`max_retries=0`) so that every retry is ours and is counted.
"""

from __future__ import annotations

import base64
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import openai

from haic_resources.llm.client import (
    GenerationSettings,
    LLMClient,
    LLMError,
    ProviderReply,
    RetryPolicy,
    TokenPrices,
    error_kind_for_status,
    parse_retry_after,
    transport_error_kind,
    video_mime_type,
)

log = logging.getLogger(__name__)


def sample_frames_jpeg(
    video_path: Path, count: int, *, long_side: int = 768, jpeg_quality: int = 85
) -> list[bytes]:
    """`count` frames spread uniformly over the clip (centres of `count` equal segments), as
    JPEG bytes, downscaled so the long side is at most `long_side`.

    Decodes sequentially (grab every frame, retrieve only the chosen ones) rather than
    seeking: seeking is unreliable in variable-frame-rate and WebM files, and measured slower
    on our H.264 test clips (each seek decodes from the previous keyframe); clips are ≤ 20 s.
    Raises `LLMError('bad_input')` if the file yields no frame.
    """
    if count < 1:
        raise ValueError("count must be >= 1")

    def decode(total: int) -> tuple[list[np.ndarray], int]:
        wanted = {min(total - 1, int((i + 0.5) * total / count)) for i in range(count)}
        capture = cv2.VideoCapture(str(video_path))
        frames: list[np.ndarray] = []
        index = 0
        try:
            while capture.grab():
                if index in wanted:
                    ok, frame = capture.retrieve()
                    if ok:
                        frames.append(frame)
                index += 1
                if len(frames) == len(wanted):
                    break
        finally:
            capture.release()
        return frames, index

    capture = cv2.VideoCapture(str(video_path))
    declared = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    capture.release()
    frames, decoded = decode(max(declared, 1))
    if len(frames) < min(count, max(decoded, 1)) and decoded > 0 and decoded != declared:
        # The container's frame count was wrong; sample again over the frames that exist.
        frames, _ = decode(decoded)
    if not frames:
        raise LLMError("bad_input", f"no decodable frame in {video_path.name}")

    encoded: list[bytes] = []
    for frame in frames:
        height, width = frame.shape[:2]
        scale = min(1.0, long_side / max(height, width))
        if scale < 1.0:
            frame = cv2.resize(frame, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)
        ok, buffer = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
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
        cache_dir: str | None = None,
        concurrency: int = 8,
        retry: RetryPolicy | None = None,
        prices: TokenPrices | None = None,
        frames_per_video: int = 8,
        frame_long_side: int = 768,
        send_video_url: bool = False,
        json_mode: bool = True,
    ) -> None:
        super().__init__(
            model=model,
            cache_dir=cache_dir,
            concurrency=concurrency,
            retry=retry,
            prices=prices,
            secrets=(api_key,),
        )
        if not api_key:
            # Local servers ignore the key but the SDK requires one; pass any placeholder.
            raise ValueError("OpenAIClient needs an api_key (any non-empty value for local servers)")
        self.frames_per_video = frames_per_video
        self.frame_long_side = frame_long_side
        self.send_video_url = send_video_url
        # response_format=json_object; some OpenAI-compatible servers reject it.
        self.json_mode = json_mode
        self._client = openai.OpenAI(
            api_key=api_key, base_url=base_url, timeout=timeout_s, max_retries=0
        )

    # ---- errors ----------------------------------------------------------------------------

    @staticmethod
    def _as_llm_error(exc: Exception) -> LLMError:
        if isinstance(exc, LLMError):
            return exc
        if isinstance(exc, openai.APIStatusError):
            code = exc.status_code
            headers = exc.response.headers if exc.response is not None else {}
            retry_after = parse_retry_after(headers.get("retry-after"))
            retry_after_ms = headers.get("retry-after-ms")
            if retry_after is None and retry_after_ms:
                retry_after = parse_retry_after(retry_after_ms)
                retry_after = retry_after / 1000 if retry_after is not None else None
            message = ""
            if isinstance(exc.body, dict):
                message = str(exc.body.get("message") or "")[:200]
            return LLMError(
                error_kind_for_status(code),
                f"chat.completions: HTTP {code} {message}".strip(),
                retry_after_s=retry_after,
                status_code=code,
            )
        kind = transport_error_kind(exc)
        if kind is not None:
            return LLMError(kind, f"chat.completions: {type(exc).__name__}")
        if isinstance(exc, (openai.APIResponseValidationError, json.JSONDecodeError, ValueError)):
            return LLMError(
                "malformed_response", f"chat.completions: unreadable response ({type(exc).__name__})"
            )
        raise exc

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
        frames = sample_frames_jpeg(video_path, self.frames_per_video, long_side=self.frame_long_side)
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

    def _complete(
        self, content: list[dict[str, Any]], settings: GenerationSettings, *, json_output: bool
    ) -> ProviderReply:
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
        try:
            response = self._client.chat.completions.create(**kwargs)
        except Exception as exc:  # noqa: BLE001 - every SDK failure becomes a typed LLMError
            raise self._as_llm_error(exc) from None
        # A 200 with a non-JSON body comes back as a plain string, not a ChatCompletion.
        if not isinstance(response, openai.types.chat.ChatCompletion) or not response.choices:
            raise LLMError("malformed_response", "chat.completions: response has no choices")
        choice = response.choices[0]
        text = choice.message.content if choice.message else None
        if not text or not text.strip():
            raise LLMError("blocked", f"empty answer (finish reason: {choice.finish_reason})")
        usage = response.usage
        return ProviderReply(
            text=text,
            raw_response=response.model_dump_json(exclude_none=True),
            model=response.model or self.model,
            input_tokens=int(usage.prompt_tokens if usage else 0),
            output_tokens=int(usage.completion_tokens if usage else 0),
        )

    def _send_video(
        self, prepared: _PreparedVideo, prompt_text: str, settings: GenerationSettings
    ) -> ProviderReply:
        content = [*prepared.parts, {"type": "text", "text": prompt_text}]
        return self._complete(content, settings, json_output=False)

    def _send_text(
        self, prompt_text: str, settings: GenerationSettings, *, json_output: bool
    ) -> ProviderReply:
        return self._complete([{"type": "text", "text": prompt_text}], settings, json_output=json_output)
