"""Content hashes and crash-safe writes of local files: the one helper for each."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from haic_resources.storage.disk_full import disk_full_error

_CHUNK = 1 << 20
TEMP_PREFIX = ".tmp-"  # a write in progress; listings of stored files pass over these names


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, mode: int = 0o644) -> None:
    """Write then rename: a reader never sees half a file, a crash never leaves one."""
    with written_through_temp(path) as tmp:
        with open(tmp, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, mode)  # mkstemp makes 0600; stored data is meant to be shared


@contextmanager
def written_through_temp(path: str | os.PathLike[str], suffix: str = "") -> Iterator[Path]:
    """A temporary file next to `path` for the block to write; renamed onto `path` when the block
    ends, removed when it raises, so neither a crash nor a full disk leaves a partial file (a
    model half copied into cache/models would take the disk's last space and stay). A full disk
    is re-raised as an OSError naming `path`, so the error says where the room ran out."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # The name is cut so that prefix + name + random part + suffix stay within NAME_MAX (255).
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f"{TEMP_PREFIX}{path.name[:120]}.", suffix=suffix)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        full = disk_full_error(exc)
        if full is not None and full.filename is None:
            raise OSError(full.errno, os.strerror(full.errno), str(path)) from exc
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
