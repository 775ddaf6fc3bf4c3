"""The local staging cache of remote videos: bounded in bytes, least recently used evicted first.

Remote sources (http(s), s3) are staged under ``<media_root>/videos/`` only while a partition's
decode steps need them; local and mounted sources are read where they are (never copied). A
cache hit marks the file used (its mtime), so eviction takes the videos no step has asked for
longest. A decode step that finds its video evicted fetches it again (`fetch_media`).

Several processes share the cache: eviction removes whole files (a reader that already has one
open keeps reading it), and the bound holds for the stored files, not for downloads in flight.

Ours, not diskcache (issue 29, bench/bench_libraries.py): a staged video is renamed into place from
its finished download, at the path the videos table records and every decode step opens, while
diskcache copies a large value into a file it names itself (a 256 MB video: seconds of copying
against a rename), updates SQLite on every read for its LRU, and, in 5.6.3 (unmaintained since
2023), unpickles what it reads (CVE-2025-69872, no fix).
"""

from __future__ import annotations

import os
from pathlib import Path

from haic_resources.storage.files import TEMP_PREFIX

SIDECAR_SUFFIX = ".json"


def cache_dir(media_root: str | os.PathLike) -> Path:
    return Path(media_root) / "videos"


def cached_bytes(media_root: str | os.PathLike) -> int:
    """Bytes of the videos (and their sidecars) in the cache, downloads in flight left out."""
    return sum(size for _, size, _ in _entries(cache_dir(media_root)))


def touch(path: Path) -> None:
    """Mark a cached video used now (least recently used goes first)."""
    try:
        os.utime(path)
    except OSError:
        pass


def make_room(media_root: str | os.PathLike, incoming: int, max_bytes: int | None, keep: Path | None = None) -> None:
    """Evict least recently used videos until `incoming` more bytes fit within `max_bytes`."""
    if max_bytes is None:
        return
    entries = sorted(_entries(cache_dir(media_root)), key=lambda e: e[2])  # oldest use first
    total = sum(size for _, size, _ in entries)
    for path, size, _ in entries:
        if total + incoming <= max_bytes:
            break
        if keep is not None and path == keep:
            continue
        release(path)
        total -= size


def release(path: str | os.PathLike) -> None:
    """Remove one staged video and its sidecar."""
    path = Path(path)
    path.with_name(path.name + SIDECAR_SUFFIX).unlink(missing_ok=True)
    path.unlink(missing_ok=True)


def is_staged(path: str | os.PathLike, media_root: str | os.PathLike) -> bool:
    """Whether `path` is a staged copy in the cache (as opposed to a source read in place)."""
    return Path(path).resolve().parent == cache_dir(media_root).resolve()


def _entries(folder: Path) -> list[tuple[Path, int, float]]:
    """(video, bytes of it and its sidecar, last use) for every stored video."""
    entries = []
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return []
    for name in names:
        if name.startswith(TEMP_PREFIX) or name.endswith(SIDECAR_SUFFIX):
            continue
        path = folder / name
        try:
            stat = path.stat()
        except FileNotFoundError:
            continue
        sidecar = path.with_name(name + SIDECAR_SUFFIX)
        extra = sidecar.stat().st_size if sidecar.exists() else 0
        entries.append((path, stat.st_size + extra, stat.st_mtime))
    return entries
