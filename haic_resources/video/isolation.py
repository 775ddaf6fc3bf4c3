"""Killable child processes: the one way the platform runs work that may hang or crash.

Decoders meet hostile input (a truncated upload, an HTML page saved as `.mp4`, a header that
claims a 100000-pixel frame). Every step that decodes media runs its per-item work through
`run_isolated` (many items, a bounded pool, a deadline per item) or `call_isolated` (one call):
a hang becomes a timeout error for that item, a crash an error value, never a stuck partition.
Every child ends with the process that started it (`exit_with_parent`): a step killed with
kill -9 leaves no decoder behind, blocked on a hostile file or working on for nobody.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from haic_resources.processes import exit_with_parent
from haic_resources.video.item_error import ItemError

class IsolationTimeout(TimeoutError):
    """The child process ran past its time limit and was killed."""


class IsolationCrash(RuntimeError):
    """The child process died without returning (segfault, out of memory, os._exit)."""


# Imported once by the fork server, so that each child starts with them loaded: importing them
# in every child cost ~0.35 s per item, more than detecting the scenes of a 10 s clip. Importing
# starts no threads; a module that fails to import is skipped by the server and imported (and
# fails with its real error) in the child that needs it.
CHILD_PRELOAD = ("numpy", "cv2", "av", "scenedetect", "haic_resources.video.acquire",
                 "haic_resources.video.scene_detect", "haic_resources.pose.clip_people",
                 "haic_resources.pose.movenet")  # the default pose backend; ONNX Runtime loads on demand


def _mp_context() -> multiprocessing.context.BaseContext:
    # forkserver: children start from a clean single-threaded server, not from a parent that
    # may hold FFmpeg/OpenCV threads or locks (fork would copy those in a locked state).
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(list(CHILD_PRELOAD))  # takes effect when the server starts
    return ctx


def _outcome(fn: Callable, args: tuple, kwargs: dict) -> tuple[str, Any]:
    try:
        return "ok", fn(*args, **kwargs)
    except BaseException as exc:  # noqa: BLE001 - everything must travel back as a value
        return "err", _portable_exception(exc)


def _send_outcome(conn: multiprocessing.connection.Connection, outcome: tuple[str, Any]) -> None:
    try:
        conn.send(outcome)
    except Exception as exc:  # the result itself did not pickle (nothing was written then)
        conn.send(("err", RuntimeError(f"result could not be sent back: {exc}")))


def _child_main(conn: multiprocessing.connection.Connection, fn: Callable, args: tuple,
                kwargs: dict) -> None:
    exit_with_parent()
    try:
        _send_outcome(conn, _outcome(fn, args, kwargs))
    finally:
        conn.close()


def _worker_main(conn: multiprocessing.connection.Connection, fn: Callable) -> None:
    """A reused worker: runs ``fn(item)`` for each item it receives, answering each in turn, until
    the parent closes its end of the pipe."""
    exit_with_parent()
    try:
        while True:
            item = conn.recv()
            _send_outcome(conn, _outcome(fn, (item,), {}))
    except EOFError:  # no more items
        pass
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


def _start_process(target: Callable, args: tuple, duplex: bool = False):
    """A child running ``target(conn, *args)``; returns it and the parent's end of the pipe."""
    ctx = _mp_context()
    parent_conn, child_conn = ctx.Pipe(duplex=duplex)
    proc = ctx.Process(target=target, args=(child_conn, *args), daemon=True)
    proc.start()
    child_conn.close()  # so that recv() sees EOF if the child dies
    return proc, parent_conn


def _hand_over(fn: Callable, item: Any, idle: list):
    """A reused worker that has been sent `item`: an idle one, else a fresh one."""
    while idle:
        proc, conn = idle.pop()
        try:
            conn.send(item)
            return proc, conn
        except OSError:  # it died while idle (killed from outside): not this item's failure
            conn.close()
            _stop(proc)
    proc, conn = _start_process(_worker_main, (fn,), duplex=True)
    conn.send(item)
    return proc, conn


def _stop(proc) -> None:
    if proc.is_alive():
        proc.kill()
    proc.join(5)
    proc.close()


def _receive(proc, conn) -> tuple[bool, str, Any]:
    """(answered, status, payload) of a child that is ready; one that died without answering is
    a crash (answered False)."""
    try:
        status, payload = conn.recv()
        return True, status, payload
    except (EOFError, OSError):
        proc.join(5)
        return False, "err", IsolationCrash(f"worker process died (exit code {proc.exitcode})")


def _collect(proc, conn) -> tuple[str, Any]:
    """Read a finished one-call child's answer and let it go."""
    try:
        _, status, payload = _receive(proc, conn)
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
    proc, conn = _start_process(_child_main, (fn, args, kwargs))
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


def close_workers(idle: list) -> None:
    """End the idle workers `run_isolated` left in `idle` (its `idle_workers`), and empty it."""
    for _, conn in idle:
        conn.close()
    for proc, _ in idle:
        proc.join(5)
        _stop(proc)
    idle.clear()


def run_isolated(
    fn: Callable[[Any], Any],
    items: Iterable[Any],
    workers: int = 2,
    timeout_s: float = 300.0,
    cost: Callable[[Any], float] | None = None,
    reuse_workers: bool = False,
    progress: Callable[[int, int], None] | None = None,
    on_result: Callable[[IsolatedResult], None] | None = None,
    idle_workers: list | None = None,
) -> list[IsolatedResult]:
    """Run ``fn(item)`` for every item in child processes, at most `workers` at once.

    By default each item has its own child: memory stays bounded (a leaking decoder dies with its
    item). With `reuse_workers`, a worker serves item after item, so what `fn` caches per process
    (a pose model) is loaded once per worker, not once per item. Either way every item is killable
    at its own deadline: a timed-out or crashed item's worker is killed and a fresh one takes the
    next items. Results come back in input order; a failed, crashed or timed-out item is an
    `IsolatedResult` with ``ok=False`` and a reason. With `cost`, items start most expensive first,
    so that a long item does not start last and run alone while the other workers idle.
    `progress(done, total)` is called as items finish (the stages log it); `on_result(result)` is
    called with each item's result as it finishes (a consumer can start on it; blocking there pauses
    the hand-out of new items, never an item's deadline). `idle_workers` (with `reuse_workers`): a list
    the caller keeps between calls with the same `fn`: its workers serve this call, and the workers
    left idle stay running in it for the next call (`close_workers` ends them), so a worker's
    start-up (a GPU context, a model) is paid once, not once per call.
    """
    if workers < 1:
        raise ValueError("workers must be >= 1")
    pending = list(enumerate(items))
    if cost is not None:
        pending.sort(key=lambda entry: cost(entry[1]), reverse=True)  # stable: ties keep input order
    pending.reverse()  # pop() from the end starts them in that order
    results: dict[int, IsolatedResult] = {}
    running: dict[Any, tuple[int, Any, Any, float]] = {}  # conn -> (index, item, proc, started)
    idle: list[tuple[Any, Any]] = idle_workers if idle_workers is not None else []  # reused workers: (proc, conn)
    n_items = len(pending)

    try:
        while pending or running:
            while pending and len(running) < workers:
                index, item = pending.pop()
                if reuse_workers:
                    proc, conn = _hand_over(fn, item, idle)
                else:
                    proc, conn = _start_process(_child_main, (fn, (item,), {}))
                running[conn] = (index, item, proc, time.monotonic())
            now = time.monotonic()
            next_deadline = min(started + timeout_s for (_, _, _, started) in running.values())
            ready = multiprocessing.connection.wait(list(running), timeout=max(0.0, next_deadline - now))
            for conn in ready:
                index, item, proc, started = running.pop(conn)
                answered, status, payload = _receive(proc, conn)
                elapsed = time.monotonic() - started
                if reuse_workers and answered:
                    idle.append((proc, conn))
                else:
                    conn.close()
                    _stop(proc)
                if status == "ok":
                    results[index] = IsolatedResult(index, item, True, value=payload, elapsed_s=elapsed)
                else:
                    results[index] = IsolatedResult(index, item, False, error=_reason(payload),
                                                    exception=payload, elapsed_s=elapsed)
                if on_result is not None:
                    on_result(results[index])
            now = time.monotonic()
            for conn, (index, item, proc, started) in list(running.items()):
                if now - started >= timeout_s and not conn.poll():  # an answer that came meanwhile counts
                    running.pop(conn)
                    conn.close()
                    _stop(proc)
                    exc = IsolationTimeout(f"timed out after {timeout_s:g} s")
                    results[index] = IsolatedResult(index, item, False, error=str(exc), exception=exc,
                                                    elapsed_s=now - started)
                    if on_result is not None:
                        on_result(results[index])
            if progress is not None:
                progress(len(results), n_items)
    finally:
        # Idle workers leave on their own once their pipe closes (all at once, then joined), unless
        # the caller keeps them; anything still running is killed.
        if idle_workers is None:
            close_workers(idle)
        for conn, (_, _, proc, _) in running.items():
            conn.close()
            _stop(proc)
    return [results[i] for i in range(n_items)]
