"""Running a batch of LLM calls on threads, where one item's failure is that item's error.

The client-side limit on requests in flight is the client's own semaphore (`LLMClient`);
`map_concurrent` only spreads a batch over at most `limit` threads.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Generic, TypeVar

from haic_resources.llm.types import LLMError

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class Outcome(Generic[T, R]):
    """One batch item's fate: a value or an `LLMError`, never both."""

    item: T
    value: R | None = None
    error: LLMError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def map_concurrent(
    fn: Callable[[T], R], items: Iterable[T], limit: int
) -> list[Outcome[T, R]]:
    """Apply `fn` to every item on at most `limit` threads; results in input order.

    An `LLMError` becomes that item's `Outcome.error`; any other exception is a bug and
    propagates (after the running items finish) rather than hiding inside a batch report.
    """
    if limit < 1:
        raise ValueError("limit must be >= 1")
    items = list(items)

    def run_one(item: T) -> Outcome[T, R]:
        try:
            return Outcome(item=item, value=fn(item))
        except LLMError as exc:
            return Outcome(item=item, error=exc)

    if not items:
        return []
    with ThreadPoolExecutor(max_workers=min(limit, len(items)), thread_name_prefix="llm") as pool:
        return list(pool.map(run_one, items))
