"""Names that become parts of stored paths: partition keys, table names, batch names.

Every table, ledger, lock, manifest and export path is built from a partition key, and keys come
in by many doors (the CLI, a sensor, the UI's "Add partition" dialog, the GraphQL API's
`addDynamicPartition`). So a key is checked where it is used, not where it came in: it must be
one path segment of letters, digits, '.', '_' and '-' that starts with a letter or digit. A key
such as 'x__a/../../raw_metadata/b.csv' or '..' can then never name another partition's files.
"""

from __future__ import annotations

import re

MAX_KEY_CHARS = 200
_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


class UnsafeKey(ValueError):
    """A name that cannot be one segment of a stored path."""


def key_problem(key: object) -> str | None:
    """Why `key` cannot be a path segment (None when it can)."""
    if not isinstance(key, str) or not key:
        return "it is empty"
    if len(key) > MAX_KEY_CHARS:
        return f"it is {len(key)} characters long (at most {MAX_KEY_CHARS})"
    if not _SEGMENT.fullmatch(key):
        return "use letters, digits, '.', '_' and '-' (no '/', no spaces), starting with a letter or digit"
    return None


def checked_key(key: object, what: str = "partition key") -> str:
    """`key` itself when it is a safe path segment; UnsafeKey naming `what` otherwise."""
    problem = key_problem(key)
    if problem is not None:
        shown = key if not isinstance(key, str) or len(key) <= 80 else f"{key[:80]}…"
        raise UnsafeKey(f"{what} {shown!r} cannot name stored files: {problem}")
    return key
