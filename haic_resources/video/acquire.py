"""One video made ready for the pipeline: found in place (local), staged in the media cache (remote), and probed.

The videos stage runs `acquire_and_probe` in a killable child process per video (`run_isolated`),
so a corrupt file that hangs or crashes the decoder costs only its own item; a decode step whose
staged video was evicted runs `acquire_only`. Both take and return plain, picklable data.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from haic_resources.storage.s3 import S3Settings
from haic_resources.video import media_fetch
from haic_resources.video.fetch_policy import FetchPolicy
from haic_resources.video.media_fetch import FetchedMedia, fetch_media
from haic_resources.video.probe import probe_video_in_process


@dataclass(frozen=True)
class AcquireTask:
    video_id: str
    uri: str
    media_root: str
    allowed_roots: tuple[str, ...]
    s3: S3Settings
    max_bytes: int = media_fetch.DEFAULT_MAX_BYTES
    connect_timeout_s: float = media_fetch.DEFAULT_CONNECT_TIMEOUT_S
    read_timeout_s: float = media_fetch.DEFAULT_READ_TIMEOUT_S
    retries: int = media_fetch.DEFAULT_RETRIES
    policy: FetchPolicy = FetchPolicy()
    cache_max_bytes: int | None = None


def _fetch(task: AcquireTask) -> FetchedMedia:
    return fetch_media(task.uri, task.media_root, allowed_roots=list(task.allowed_roots), s3=task.s3,
                       policy=task.policy, cache_max_bytes=task.cache_max_bytes, max_bytes=task.max_bytes,
                       connect_timeout_s=task.connect_timeout_s, read_timeout_s=task.read_timeout_s,
                       retries=task.retries)


def acquire_and_probe(task: AcquireTask) -> dict[str, Any]:
    """Find the video in place or stage it (or find it staged) and probe it."""
    media = _fetch(task)
    probe = probe_video_in_process(str(media.local_path))
    return {"media": {**asdict(media), "local_path": str(media.local_path)}, "probe": asdict(probe)}


def acquire_only(task: AcquireTask) -> dict[str, Any]:
    """Stage the video again (it was evicted); no probe."""
    media = _fetch(task)
    return {"local_path": str(media.local_path), "sha256": media.sha256, "size_bytes": media.size_bytes}
