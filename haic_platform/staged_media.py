"""Source videos for the decode steps (clips, human_presence, action_filtered): read local ones in
place, fetch remote ones again when the bounded cache evicted them, release them once no later
decode step of the partition needs them (unless the deployment mirrors sources).

The settings live with `videos` (`cache_max_bytes`, `mirror_sources`); these steps share them.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from haic_resources.video import media_cache
from haic_resources.video.acquire import AcquireTask, acquire_only
from haic_resources.video.isolation import run_isolated
from haic_resources.video.media_fetch import policy_refusal

DEFAULT_CACHE_MAX_BYTES = 50 * 1024**3
REFETCH_TIMEOUT_S = 900.0
SHARED_SETTINGS = {"cache_max_bytes": "videos", "mirror_sources": "videos"}


def restage(stage, rows: pd.DataFrame, cache_max_bytes: int | None) -> dict[str, str]:
    """Check every source of `rows` (columns video_id, uri, local_path) against the fetch policy as
    it is now, and fetch again those whose staged copy was evicted. Returns video_id -> reason for
    those that may not be used (the policy refuses them now) or could not be fetched again."""
    storage = stage.storage
    refused = {}
    if "uri" in rows.columns:
        policy = storage.fetch_policy()
        for row in rows.drop_duplicates("video_id").itertuples(index=False):
            if (reason := policy_refusal(row.uri, policy)) is not None:
                refused[row.video_id] = reason
        if refused:
            stage.log.warning(f"{len(refused)} source video(s) refused by the fetch policy as it is now")
    rows = rows[~rows["video_id"].isin(refused)]
    missing = rows[~rows["local_path"].map(lambda p: Path(p).exists())].drop_duplicates("video_id")
    if missing.empty:
        return refused
    if "uri" not in missing.columns:  # a table written before sources were staged: no uri to fetch again
        return {v: "source video missing (table written before staging; re-run videos)" for v in missing["video_id"]}
    tasks = [AcquireTask(video_id=r.video_id, uri=r.uri, media_root=str(storage.layout.media),
                         allowed_roots=storage.allowed_roots(), s3=storage.s3_settings(), policy=storage.fetch_policy(),
                         cache_max_bytes=cache_max_bytes) for r in missing.itertuples(index=False)]
    stage.log.info(f"fetching {len(tasks)} evicted source video(s) again")
    failed = dict(refused)
    for result in run_isolated(acquire_only, tasks, workers=2, timeout_s=REFETCH_TIMEOUT_S):
        if not result.ok:
            failed[result.item.video_id] = f"source evicted from the media cache; fetching it again: {result.error}"
        elif result.value["local_path"] != dict(zip(missing["video_id"], missing["local_path"]))[result.item.video_id]:
            failed[result.item.video_id] = "source evicted from the media cache came back at another path"
    return failed


def release_sources(stage, paths, mirror: bool) -> int:
    """Release the staged copies among `paths` (sources read in place are never touched). Returns how many."""
    if mirror:
        return 0
    media_root = stage.storage.layout.media
    released = 0
    for path in set(paths):
        if media_cache.is_staged(path, media_root) and Path(path).exists():
            media_cache.release(path)
            released += 1
    if released:
        stage.log.info(f"released {released} staged source video(s) no later decode step needs")
    return released
