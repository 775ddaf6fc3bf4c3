"""run_isolated with reused workers: each worker serves many items, every item keeps its own deadline,
and a hang or a crash costs only its item (its worker is killed, a fresh one takes the rest)."""

from __future__ import annotations

import os
import time

import pytest

from haic_resources.video.isolation import close_workers, run_isolated
from tests.timing import limit


def behave(item: str) -> tuple[str, int]:
    """For the pool tests: do what the item says, in whichever child runs it."""
    if item == "hang":
        time.sleep(3600)
    if item == "crash":
        os._exit(3)
    if item == "raise":
        raise ValueError("the item says no")
    return item, os.getpid()


def read_first_byte(path: str) -> bytes:
    """Opening a named pipe that has no writer blocks forever: a file that lies about being a file."""
    with open(path, "rb") as handle:
        return handle.read(1)


@pytest.mark.parametrize("reuse_workers", [False, True])
def test_a_hang_and_a_crash_cost_only_their_own_items_in_input_order(reuse_workers):
    items = ["a", "hang", "b", "crash", "c", "raise", "d"]
    started = time.monotonic()
    results = run_isolated(behave, items, workers=1, timeout_s=limit(5.0), reuse_workers=reuse_workers)
    assert time.monotonic() - started < limit(60)
    assert [r.item for r in results] == items and [r.index for r in results] == list(range(len(items)))
    assert [r.ok for r in results] == [True, False, True, False, True, False, True]
    assert [r.value[0] for r in results if r.ok] == ["a", "b", "c", "d"]
    assert results[1].error == f"timed out after {limit(5):g} s"
    assert results[3].error == "IsolationCrash: worker process died (exit code 3)"
    assert results[5].error == "ValueError: the item says no"


def test_a_reused_worker_serves_items_until_a_hang_or_crash_kills_it():
    items = ["a", "b", "hang", "c", "raise", "d", "crash", "e"]
    results = run_isolated(behave, items, workers=1, timeout_s=limit(5.0), reuse_workers=True)
    pid = {r.item: r.value[1] for r in results if r.ok}
    assert pid["a"] == pid["b"]                   # one worker, many items
    assert pid["c"] != pid["b"]                   # the hang killed it: a fresh worker took over
    assert pid["c"] == pid["d"]                   # an exception is an answer: the worker lives on
    assert pid["e"] != pid["d"]                   # the crash took the worker with it
    for worker in set(pid.values()):              # and none outlives the call
        with pytest.raises(ProcessLookupError):
            os.kill(worker, 0)


def test_kept_workers_serve_the_next_call_and_each_result_is_handed_over_as_it_finishes():
    kept, seen = [], []
    first = run_isolated(behave, ["a", "b"], workers=1, timeout_s=limit(30), reuse_workers=True, idle_workers=kept,
                         on_result=lambda r: seen.append((r.index, r.ok)))
    assert seen == [(0, True), (1, True)] and len(kept) == 1  # the worker stays for the next call
    second = run_isolated(behave, ["c", "hang", "raise"], workers=1, timeout_s=limit(3), reuse_workers=True,
                          idle_workers=kept, on_result=lambda r: seen.append((r.index, r.ok)))
    assert second[0].value[1] == first[0].value[1]  # the same process: its start-up paid once
    assert seen[2:] == [(0, True), (1, False), (2, False)] and second[1].error == f"timed out after {limit(3):g} s"
    assert len(kept) == 1 and kept[0][0].pid != first[0].value[1]  # the hang's worker died; its successor is kept
    worker = kept[0][0].pid
    close_workers(kept)
    assert kept == []
    with pytest.raises(ProcessLookupError):
        os.kill(worker, 0)


def test_without_reuse_every_item_has_its_own_child():
    results = run_isolated(behave, ["a", "b", "c"], workers=1, timeout_s=limit(30))
    assert len({r.value[1] for r in results}) == 3


def test_a_fifo_that_never_gets_a_writer_times_out_while_the_other_workers_go_on(tmp_path):
    fifo = tmp_path / "lies.mp4"
    os.mkfifo(fifo)
    real = tmp_path / "real.bin"
    real.write_bytes(b"x")
    items = [str(real), str(fifo), str(real), str(real)]
    results = run_isolated(read_first_byte, items, workers=2, timeout_s=limit(5.0), reuse_workers=True)
    assert [r.ok for r in results] == [True, False, True, True]
    assert [r.value for r in results if r.ok] == [b"x"] * 3
    assert results[1].error == f"timed out after {limit(5):g} s"


def test_a_child_ends_with_the_process_that_started_it_even_after_kill_9():
    """A step killed with kill -9 runs no clean-up: its decoder, here hanging on an item, ends by itself."""
    import signal
    import subprocess
    import sys

    from tests.helpers import REPO_ROOT, wait_until
    from tests.process_tree import describe, descendants, still_alive

    script = ("from haic_resources.video.isolation import run_isolated\n"
              "from tests.test_isolation_workers import behave\n"
              "run_isolated(behave, ['hang'], workers=1, timeout_s=3600)\n")
    parent = subprocess.Popen([sys.executable, "-c", script], cwd=REPO_ROOT)
    children = []
    try:
        # the worker the fork server forked for the item: a grandchild
        wait_until(lambda: any(p.ppid != parent.pid for p in descendants(parent.pid)), 120,
                   "the worker to start on its item", interval_s=0.1)
        children += descendants(parent.pid)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        wait_until(lambda: not still_alive(children), 30, "the worker and its fork server to end", interval_s=0.1)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        for process in still_alive(children):
            os.kill(process.pid, signal.SIGKILL)
    assert not still_alive(children), describe(children)
