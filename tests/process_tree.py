"""The processes a test started, as /proc shows them: a process tree, whether any of it is left,
who holds a file open. Shared by the tests of `haic ui`'s stop and of a run's children."""

from __future__ import annotations

import os
from pathlib import Path

from haic_resources.processes import ProcStat, live_processes, proc_stat


def descendants(pid: int) -> list[ProcStat]:
    """The live descendants of `pid` (not `pid` itself), as /proc shows them now."""
    processes = live_processes()
    children: dict[int, list[ProcStat]] = {}
    for process in processes:
        children.setdefault(process.ppid, []).append(process)
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child.pid)
    return found


def still_alive(processes: list[ProcStat]) -> list[ProcStat]:
    """Those of `processes` that still run (the same pid and start time, not a zombie)."""
    left = []
    for process in processes:
        now = proc_stat(process.pid)
        if now is not None and now.alive and now.start_ticks == process.start_ticks:
            left.append(process)
    return left


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def environment(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    return dict(entry.split("=", 1) for entry in raw.decode(errors="replace").split("\0") if "=" in entry)


def with_environment(name: str, value: str) -> list[ProcStat]:
    """Every live process whose environment has `name`=`value` (e.g. the DAGSTER_HOME of a test)."""
    return [p for p in live_processes() if environment(p.pid).get(name) == value]


def holders_of(path: Path) -> list[int]:
    """The pids of the live processes that have `path` open."""
    target = os.path.realpath(path)
    found = []
    for process in live_processes():
        try:
            fds = os.listdir(f"/proc/{process.pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{process.pid}/fd/{fd}") == target:
                    found.append(process.pid)
                    break
            except OSError:
                continue
    return found


def describe(processes: list[ProcStat]) -> str:
    return "\n".join(f"{p.pid} {command_line(p.pid)[:160]}" for p in processes)
