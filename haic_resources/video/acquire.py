"""One video made ready for the pipeline: fetched into the media store (or found there) and probed.

The videos stage runs `acquire_and_probe` in a killable child process per video (`run_isolated`),
so a corrupt file that hangs or crashes the decoder costs only its own item. It takes and returns
plain, picklable data for that reason.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from haic_resources.storage.s3 import S3Settings
from haic_resources.video.fetch_policy import FetchPolicy
from haic_resources.video.media_fetch import fetch_media
from haic_resources.video.probe import probe_video_in_process


@dataclass(frozen=True)
class AcquireTask:
    video_id: str
    uri: str
    media_root: str
    allowed_roots: tuple[str, ...]
    s3: S3Settings
    max_bytes: int
    connect_timeout_s: float
    read_timeout_s: float
    retries: int
    policy: FetchPolicy = FetchPolicy()


def acquire_and_probe(task: AcquireTask) -> dict[str, Any]:
    """Fetch the video into the media store (or find it cached) and probe it."""
    media = fetch_media(task.uri, task.media_root, allowed_roots=list(task.allowed_roots), s3=task.s3,
                        policy=task.policy, max_bytes=task.max_bytes, connect_timeout_s=task.connect_timeout_s,
                        read_timeout_s=task.read_timeout_s, retries=task.retries)
    probe = probe_video_in_process(str(media.local_path))
    return {"media": {**asdict(media), "local_path": str(media.local_path)}, "probe": asdict(probe)}
