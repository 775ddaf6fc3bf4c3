"""One writer per partition at a time, whatever started the run.

Dagster's run queue keeps two runs tagged with one `dagster/partition` apart (dagster.yaml), but a
backfill run over a range of partitions carries no such tag, and a limit cannot name a set of
partitions; `haic run` executes in its own process, outside the queue. So every stage step takes
an exclusive lock per partition it writes (`$HAIC_HOME/locks/`, `flock`), from before its body
runs until its outputs are stored, taking the locks of a multi-partition step in sorted order (no
deadlock). A second step of the same stage and partition — from a range backfill, a single-shard
run or another `haic run` — waits for the first one and then computes on its own.

`flock` locks end with their process (kill -9 included), so no lock outlives a dead run. They
hold between processes of one host or of a file system with working `flock` (not all network file
systems). So where Dagster keeps its runs in PostgreSQL (the production profile: runs on separate
pods or hosts), the lock is a PostgreSQL advisory lock on that database instead
(haic_resources/storage/postgres_lock.py), ending with its session as a file lock ends with its
process; `postgres_url_of(instance)` says which applies.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Iterator, Sequence

from haic_resources.storage.postgres_lock import advisory_locks


def postgres_url_of(instance) -> str | None:
    """The PostgreSQL URL of a Dagster instance whose runs live in PostgreSQL, else None."""
    return getattr(getattr(instance, "run_storage", None), "postgres_url", None)


@contextmanager
def partition_locks(root: str | os.PathLike, keys: Sequence[str], holder: str, log=None,
                    postgres_url: str | None = None) -> Iterator[None]:
    """Hold the lock of every partition in `keys` (taken in sorted order); `holder` names this run
    for the log line of whoever waits. With `postgres_url`, the locks are advisory locks of that
    database (held across hosts); without, file locks under `root`/locks (held on this host)."""
    if postgres_url:
        with advisory_locks(postgres_url, keys, holder, log):
            yield
        return
    folder = Path(root) / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        for key in sorted(set(keys)):
            path = folder / f"{hashlib.sha256(key.encode('utf-8')).hexdigest()[:32]}.lock"
            handle = stack.enter_context(open(path, "a+"))
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                other = handle.read().strip() or "another run"
                if log is not None:
                    log.warning(f"partition {key} is being written by {other}; waiting for it")
                fcntl.flock(handle, fcntl.LOCK_EX)
            handle.seek(0)
            handle.truncate()
            handle.write(f"{holder} (pid {os.getpid()})")
            handle.flush()
        yield
