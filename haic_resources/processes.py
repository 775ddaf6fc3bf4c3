"""The platform's processes and how they end (Linux): a child dies with its parent, a process group
stops whole.

A process killed with kill -9 (or by the OOM killer) runs no clean-up, and its children live on,
re-parented to init: a run's step went on writing events into a run already marked FAILURE, a
decoder blocked on a hostile file went on forever, `haic ui`'s daemon outlived `haic ui`.

- `proc_stat(pid)`: what the kernel says of a live process (parent, process group, start time).
- `die_with_parent(signum)`: the kernel sends `signum` to this process when the thread that started
  it exits (PR_SET_PDEATHSIG): for a `subprocess.Popen` child (`preexec_fn`) and a fork server's.
- `exit_with_parent()`: a `multiprocessing` child ends itself when the process that started it ends,
  whichever of its threads started it (the parent's sentinel, not the kernel's thread-bound signal).
- `stop_group(pgid, ...)`: interrupt a process group, give it a grace period, then kill what is left.

Fork servers get their own module, `haic_resources.fork_server_children` (a preload module).
"""

from __future__ import annotations

import ctypes
import multiprocessing
import multiprocessing.connection
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_libc = ctypes.CDLL(None, use_errno=True)  # resolved here, so that a forked child only calls it


@dataclass(frozen=True)
class ProcStat:
    """The fields of /proc/<pid>/stat the platform reads."""

    pid: int
    state: str  # R, S, D, T, Z (zombie), X (dead), ...
    ppid: int
    pgid: int
    sid: int
    start_ticks: int  # clock ticks after boot: with the pid, it names one process for good

    @property
    def alive(self) -> bool:
        return self.state not in ("Z", "X")  # a zombie runs nothing more


def proc_stat(pid: int) -> ProcStat | None:
    """What /proc says of process `pid`, or None when there is no such process (zombies included:
    see `ProcStat.alive`)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) ", which may hold spaces
    return ProcStat(pid, fields[0], int(fields[1]), int(fields[2]), int(fields[3]), int(fields[19]))


def live_processes() -> list[ProcStat]:
    """Every live (not zombie) process this user can see."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (stat := proc_stat(int(entry))) is not None and stat.alive:
            found.append(stat)
    return found


def die_with_parent(signum: int = signal.SIGKILL, parent: int | None = None) -> None:
    """Have the kernel send `signum` to this process when the thread that started it exits. With
    `parent` (its pid, read before the fork): exit at once if it is gone already (the signal only
    covers a death after this call). Safe in a `preexec_fn` and right after a fork: one system call."""
    if _libc.prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if parent is not None and os.getppid() != parent:
        os._exit(1)


def exit_with_parent() -> None:
    """In a `multiprocessing` child: end this process (SIGKILL, no clean-up) as soon as the process
    that started it ends, however it ends. A thread waits on the parent's sentinel, a pipe whose
    other end only the parent holds; it reads end-of-file when the parent is gone, even if that
    happened before this call. (Unlike PR_SET_PDEATHSIG it does not matter which of the parent's
    threads started the child, nor whether a fork server forked it.)"""
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        multiprocessing.connection.wait([parent.sentinel])
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def group_members(pgid: int) -> list[ProcStat]:
    """The live processes of process group `pgid`."""
    return [p for p in live_processes() if p.pgid == pgid]


def wait_for_group_to_end(pgid: int, timeout_s: float, reap: subprocess.Popen | None = None,
                          hurry: Callable[[], bool] = lambda: False) -> bool:
    """Wait until no live process is left in group `pgid` (its leader `reap`, our child, is reaped on
    the way); whether that happened before `timeout_s` had passed or `hurry()` said to stop waiting."""
    deadline = time.monotonic() + timeout_s
    while True:
        if reap is not None:
            reap.poll()
        if not group_members(pgid):
            return True
        if time.monotonic() >= deadline or hurry():
            return False
        time.sleep(0.05)


def stop_group(pgid: int, grace_s: float, leader: subprocess.Popen | None = None,
               hurry: Callable[[], bool] = lambda: False) -> bool:
    """Stop process group `pgid` whole: SIGINT to every member (what Ctrl-C at a terminal does), then
    SIGKILL to whatever is left after `grace_s`, or as soon as `hurry()`. Returns whether it ended
    within the grace. `leader`: the group's leader when it is our child (reaped here)."""
    try:
        os.killpg(pgid, signal.SIGINT)
    except ProcessLookupError:
        pass
    if wait_for_group_to_end(pgid, grace_s, leader, hurry):
        return True
    kill_group(pgid, leader)
    return False


def kill_group(pgid: int, leader: subprocess.Popen | None = None) -> None:
    """SIGKILL every member of group `pgid`, and wait until they are gone."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    wait_for_group_to_end(pgid, 30.0, leader)  # SIGKILL cannot be refused: this is the kernel's time
