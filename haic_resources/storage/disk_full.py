"""A full disk, recognised wherever it surfaces and said in one line with where the room ran out.

A write that finds no room raises OSError ENOSPC (or EDQUOT over a quota), often wrapped by the
library that wrote (s3transfer, Dagster's step error). SQLite says "database or disk is full" when
it knows, and only "disk I/O error" when its journal or WAL finds no room (Dagster's event log
under HAIC_HOME/dagster on a full disk): that one is a full disk only if the disk is nearly full.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
SQLITE_FULL, SQLITE_IO = "database or disk is full", "disk I/O error"
NEARLY_FULL_BYTES = 1 << 20
# How an OSError reads once serialized (a step's error in the run's events):
# "OSError: [Errno 28] No space left on device: '/home/x/cache/models/m.tflite'"
_SERIALIZED_OS_ERROR = re.compile(r"\[Errno (?P<errno>\d+)\] (?P<strerror>[^:\n]+)(?:: '(?P<filename>[^'\n]+)')?")


def exception_chain(exc: BaseException | None) -> Iterator[BaseException]:
    """`exc`, then what caused it (`raise ... from`, or the error being handled when it was raised)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def disk_full_error(exc: BaseException | None) -> OSError | None:
    """The "no space left on device" (or quota) error in `exc` or what caused it, else None."""
    return next((e for e in exception_chain(exc) if isinstance(e, OSError) and e.errno in DISK_FULL_ERRNOS), None)


def disk_full_message(exc: BaseException | None, database: Path) -> str | None:
    """"disk full: ..." naming the file that found no room (`database`, the Dagster instance's
    folder, for SQLite) and the file system it is on; None when `exc` is no full disk."""
    full = disk_full_error(exc)
    if full is not None and full.filename:
        path = Path(os.fsdecode(full.filename))
    elif full is not None:
        path = database.parent
    else:
        said = " ".join(str(e) for e in exception_chain(exc))
        if SQLITE_FULL not in said and not (SQLITE_IO in said and free_bytes(database) < NEARLY_FULL_BYTES):
            return None
        path = database
    return (f"disk full: no space left on {mount_point(path)} (writing {path}): free some space there "
            "(or move HAIC_HOME) and run it again")


def serialized_disk_full(messages: list[str]) -> OSError | None:
    """The full disk's OSError again, from the messages of a serialized error and its causes."""
    for message in messages:
        match = _SERIALIZED_OS_ERROR.search(message or "")
        if match and int(match["errno"]) in DISK_FULL_ERRNOS:
            return OSError(int(match["errno"]), match["strerror"], match["filename"])
    return None


def free_bytes(path: Path) -> int:
    return shutil.disk_usage(_existing(path)).free


def mount_point(path: Path) -> Path:
    """The mount point of the file system `path` is (or would be) on."""
    path = _existing(path)
    while not os.path.ismount(path):
        path = path.parent
    return path


def _existing(path: Path) -> Path:
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path
