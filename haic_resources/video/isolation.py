"""Killable child processes: the one way the platform runs work that may hang or crash.

Decoders meet hostile input (a truncated upload, an HTML page saved as `.mp4`, a header that
claims a 100000-pixel frame). Every step that decodes media runs its per-item work through
`run_isolated` (many items, a bounded pool, a deadline per item) or `call_isolated` (one call):
a hang becomes a timeout error for that item, a crash an error value, never a stuck partition.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from haic_resources.video.item_error import ItemError

class IsolationTimeout(TimeoutError):
    """The child process ran past its time limit and was killed."""


class IsolationCrash(RuntimeError):
    """The child process died without returning (segfault, out of memory, os._exit)."""


# Imported once by the fork server, so that each child starts with them loaded: importing them
# in every child cost ~0.35 s per item, more than detecting the scenes of a 10 s clip. Importing
# starts no threads; a module that fails to import is skipped by the server and imported (and
# fails with its real error) in the child that needs it.
CHILD_PRELOAD = ("numpy", "cv2", "av", "scenedetect", "haic_resources.video.child_work")


def _mp_context() -> multiprocessing.context.BaseContext:
    # forkserver: children start from a clean single-threaded server, not from a parent that
    # may hold FFmpeg/OpenCV threads or locks (fork would copy those in a locked state).
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(list(CHILD_PRELOAD))  # takes effect when the server starts
    return ctx


def _child_main(conn: multiprocessing.connection.Connection, fn: Callable, args: tuple,
                kwargs: dict) -> None:
    try:
        result = ("ok", fn(*args, **kwargs))
    except BaseException as exc:  # noqa: BLE001 - everything must travel back as a value
        result = ("err", _portable_exception(exc))
    try:
        conn.send(result)
    except Exception as exc:  # the result itself did not pickle
        conn.send(("err", RuntimeError(f"result could not be sent back: {exc}")))
    finally:
        conn.close()


def _portable_exception(exc: BaseException) -> BaseException:
    """The exception itself if it survives pickling, else a RuntimeError with its text."""
    import pickle

    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        tail = traceback.format_exception_only(type(exc), exc)[-1].strip()
        return RuntimeError(tail)


def _start_child(fn: Callable, args: tuple, kwargs: dict):
    ctx = _mp_context()
    parent_conn, child_conn = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child_main, args=(child_conn, fn, args, kwargs), daemon=True)
    proc.start()
    child_conn.close()  # so that recv() sees EOF if the child dies
    return proc, parent_conn


def _stop(proc) -> None:
    if proc.is_alive():
        proc.kill()
    proc.join(5)
    proc.close()


def _collect(proc, conn) -> tuple[str, Any]:
    """Read a finished child's answer; a child that died without one is a crash."""
    try:
        status, payload = conn.recv()
    except (EOFError, OSError):
        proc.join(5)
        code = proc.exitcode
        status, payload = "err", IsolationCrash(f"worker process died (exit code {code})")
    finally:
        conn.close()
    _stop(proc)
    return status, payload


def call_isolated(fn: Callable, *args: Any, timeout_s: float, **kwargs: Any) -> Any:
    """Run ``fn(*args, **kwargs)`` in a child process and return its result.

    Re-raises the child's exception; raises `IsolationTimeout` if it runs longer than
    `timeout_s` (the child is killed) and `IsolationCrash` if it dies. `fn` must be a
    module-level function (it is pickled by name).
    """
    proc, conn = _start_child(fn, args, kwargs)
    if not conn.poll(timeout_s):
        conn.close()
        _stop(proc)
        raise IsolationTimeout(f"timed out after {timeout_s:g} s")
    status, payload = _collect(proc, conn)
    if status == "err":
        raise payload
    return payload


def call_isolated_or_raise(error: type[ItemError], what: str, fn: Callable, *args: Any, timeout_s: float,
                           timeout_hint: str = "", **kwargs: Any) -> Any:
    """`call_isolated`, with every way it can fail turned into `error` and a one-line reason
    ("<what> timed out after 30 s", "<what> crashed: ...", "<what> failed: ...")."""
    try:
        return call_isolated(fn, *args, timeout_s=timeout_s, **kwargs)
    except error:
        raise
    except IsolationTimeout:
        raise error(f"{what} timed out after {timeout_s:g} s{timeout_hint}")
    except IsolationCrash as exc:
        raise error(f"{what} crashed: {exc}")
    except Exception as exc:  # anything unexpected is still this item's error, with its text
        raise error(f"{what} failed: {_reason(exc)}")


@dataclass(frozen=True)
class IsolatedResult:
    """One item's outcome in `run_isolated`: a value, or an error reason (never both)."""

    index: int
    item: Any
    ok: bool
    value: Any = None
    error: str | None = None  # one line, e.g. "timed out after 30 s" or a VideoProbeError reason
    exception: BaseException | None = None
    elapsed_s: float = 0.0


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    if isinstance(reason, str) and reason:
        return reason
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def run_isolated(
    fn: Callable[[Any], Any],
    items: Iterable[Any],
    workers: int = 2,
    timeout_s: float = 300.0,
    cost: Callable[[Any], float] | None = None,
) -> list[IsolatedResult]:
    """Run ``fn(item)`` for every item, each in its own child process, at most `workers` at once.

    One process per item keeps memory bounded (a leaking decoder dies with its item) and makes
    every item killable at its own deadline. Results come back in input order; a failed,
    crashed or timed-out item is an `IsolatedResult` with ``ok=False`` and a reason. With
    `cost`, items start most expensive first, so that a long item does not start last and run
    alone while the other workers idle.
    """
    if workers < 1:
        raise ValueError("workers must be >= 1")
    pending = list(enumerate(items))
    if cost is not None:
        pending.sort(key=lambda entry: cost(entry[1]), reverse=True)  # stable: ties keep input order
    pending.reverse()  # pop() from the end starts them in that order
    results: dict[int, IsolatedResult] = {}
    running: dict[Any, tuple[int, Any, Any, float]] = {}  # conn -> (index, item, proc, started)
    n_items = len(pending)

    while pending or running:
        while pending and len(running) < workers:
            index, item = pending.pop()
            proc, conn = _start_child(fn, (item,), {})
            running[conn] = (index, item, proc, time.monotonic())
        now = time.monotonic()
        next_deadline = min(started + timeout_s for (_, _, _, started) in running.values())
        ready = multiprocessing.connection.wait(list(running), timeout=max(0.0, next_deadline - now))
        for conn in ready:
            index, item, proc, started = running.pop(conn)
            status, payload = _collect(proc, conn)
            elapsed = time.monotonic() - started
            if status == "ok":
                results[index] = IsolatedResult(index, item, True, value=payload, elapsed_s=elapsed)
            else:
                results[index] = IsolatedResult(index, item, False, error=_reason(payload),
                                                exception=payload, elapsed_s=elapsed)
        now = time.monotonic()
        for conn, (index, item, proc, started) in list(running.items()):
            if now - started >= timeout_s:
                running.pop(conn)
                conn.close()
                _stop(proc)
                exc = IsolationTimeout(f"timed out after {timeout_s:g} s")
                results[index] = IsolatedResult(index, item, False, error=str(exc), exception=exc,
                                                elapsed_s=now - started)
    return [results[i] for i in range(n_items)]
