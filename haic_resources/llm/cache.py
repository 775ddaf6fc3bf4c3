"""The persistent response cache: a re-run sends no request for work already done.

An answer is keyed by everything that determines it (provider, model, prompt-template version,
sha256 of every input, generation settings, the shape of the request).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from haic_resources.storage.files import atomic_write_bytes, sha256_bytes

log = logging.getLogger(__name__)


def cache_key(fields: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON of everything that determines an answer."""
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)
    return sha256_bytes(canonical.encode("utf-8"))


class ResponseCache:
    """One JSON file per answer under `root/<key[:2]>/<key>.json`.

    A directory of files (rather than one database file) lets many threads and processes
    write at once without a lock: each entry is written atomically (`atomic_write_bytes`), so
    a reader sees a whole entry or none, and a writer killed mid-write (kill -9) loses only the
    answer it was writing.
    """

    # Ours, not diskcache (issue 29, bench/bench_libraries.py: 4 processes and kill -9 as safe,
    # puts as fast, hits 1.7x faster at some 10 µs next to seconds of LLM call): its byte limit
    # evicts, and an evicted answer is paid again, which this cache exists to prevent; diskcache
    # 5.6.3, unmaintained since 2023, unpickles what it reads (CVE-2025-69872, no fix), where a
    # damaged or planted entry here is a miss; one SQLite file would lose every paid answer
    # where a damaged file here loses one; and the answers already stored would be paid again.

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        path = self._path(key)
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (json.JSONDecodeError, UnicodeDecodeError):
            # A damaged entry is a miss, not a crash; the next answer overwrites it.
            log.warning("ignoring unreadable LLM cache entry %s", path.name)
            return None

    def put(self, key: str, entry: Mapping[str, Any]) -> None:
        text = json.dumps(entry, ensure_ascii=False, sort_keys=True)
        atomic_write_bytes(self._path(key), text.encode("utf-8"))
