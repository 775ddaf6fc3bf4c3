"""Exclusive locks that hold across hosts: PostgreSQL session advisory locks.

The production profile's run workers may run on separate hosts or pods, where a file lock holds
nothing; they all share the PostgreSQL that keeps Dagster's runs. A lock here is
`pg_advisory_lock(k)` on a connection of its own, with `k` the first 8 bytes of sha256(name) as a
signed 64-bit key. The connection's `application_name` names the holder (63 characters at most),
so a waiter can say whom it waits for (pg_locks joined with pg_stat_activity). The lock ends with
the connection: closed on release, or dropped by the server when the holder dies (TCP keepalives
of 30 s idle, 3 probes 10 s apart, find a vanished host).

The connection URL carries the password: it is used to connect and never logged or put in an error.
"""

from __future__ import annotations

import hashlib
from contextlib import ExitStack, contextmanager
from typing import Iterator, Sequence

_KEEPALIVES = "SET tcp_keepalives_idle = 30; SET tcp_keepalives_interval = 10; SET tcp_keepalives_count = 3"


def lock_key(name: str) -> int:
    """The advisory lock key of `name`: sha256's first 8 bytes as a signed 64-bit integer."""
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "big", signed=True)


@contextmanager
def advisory_locks(postgres_url: str, names: Sequence[str], holder: str, log=None) -> Iterator[None]:
    """Hold the advisory lock of every name in `names` (taken in sorted order: no deadlock between
    two holders of overlapping sets). A taken lock is waited for, after a warning naming its holder."""
    import psycopg2

    dsn = _libpq_url(postgres_url)
    try:
        conn = psycopg2.connect(dsn, application_name=holder[:63], connect_timeout=30)
    except psycopg2.Error as exc:
        raise RuntimeError(f"partition lock: cannot connect to PostgreSQL ({type(exc).__name__})") from None
    with ExitStack() as stack:
        stack.callback(conn.close)  # closing the session releases its locks
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(_KEEPALIVES)
            for name in sorted(set(names)):
                key = lock_key(name)
                cur.execute("SELECT pg_try_advisory_lock(%s)", (key,))
                if not cur.fetchone()[0]:
                    if log is not None:
                        log.warning(f"partition {name} is being written by {_holder_of(cur, key)}; waiting for it")
                    cur.execute("SELECT pg_advisory_lock(%s)", (key,))
        yield


def _holder_of(cur, key: int) -> str:
    unsigned = key & 0xFFFFFFFFFFFFFFFF
    cur.execute("SELECT a.application_name, a.client_addr, a.pid FROM pg_locks l JOIN pg_stat_activity a "
                "ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted AND l.classid = %s "
                "AND l.objid = %s AND l.objsubid = 1", (unsigned >> 32, unsigned & 0xFFFFFFFF))
    row = cur.fetchone()
    if row is None:
        return "another run"
    name, address, pid = row
    return f"{name or 'another session'} (PostgreSQL session {pid} from {address or 'a local socket'})"


def _libpq_url(url: str) -> str:
    """SQLAlchemy's `postgresql+psycopg2://…` as libpq reads it: `postgresql://…`."""
    scheme, sep, rest = url.partition("://")
    return ("postgresql" if scheme.startswith("postgres") else scheme) + sep + rest
