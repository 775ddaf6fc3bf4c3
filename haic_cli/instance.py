"""`haic ui` and `haic home`: the Dagster UI on this HAIC_HOME, and where everything lives.

    haic ui [--host H] [--port P]   webserver + daemon + code server (dagster dev), one per home
    haic home                       the folders and files under HAIC_HOME
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from pathlib import Path

from haic_resources.processes import die_with_parent, kill_group, stop_group
from haic_resources.storage.home import REPO_ROOT, haic_home, prepare_dagster_home

DEV_SUPERSEDED_NOTICE = "Function `dev_command` is superseded"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# How long the tree has to stop after SIGINT (the webserver, the daemon's threads, the code server
# and any run in progress, which ends as interrupted) before whatever is left gets SIGKILL.
STOP_GRACE_S = 10.0


def register(sub) -> None:
    p = sub.add_parser("ui", help="start the Dagster UI (dagster dev) on 127.0.0.1",
                       description="The Dagster UI and daemon on this HAIC_HOME's instance (one per home).")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=3000)
    p.set_defaults(func=cmd_ui)
    p = sub.add_parser("home", help="print where everything lives",
                       description="The places under HAIC_HOME: the Dagster instance, the landing zone, tables, "
                                   "media, caches, exports and the DuckDB warehouse.")
    p.set_defaults(func=cmd_home)


def cmd_ui(args: argparse.Namespace) -> int:
    dagster_home = prepare_dagster_home()
    lock = _single_ui_lock(dagster_home)
    if lock is None:
        print(f"haic ui: another `haic ui` is already running on {dagster_home} (one UI and one daemon per "
              "HAIC_HOME); stop it first, or set HAIC_HOME to another home.", file=sys.stderr)
        return 1
    env = dict(os.environ, DAGSTER_HOME=str(dagster_home))
    print(f"DAGSTER_HOME={env['DAGSTER_HOME']}; UI at http://{args.host}:{args.port} (Ctrl-C stops it)", flush=True)
    with lock:
        return _run_tree(dev_command(args.host, args.port), env, dagster_home, lock.fileno())


def dev_command(host: str, port: int) -> list[str]:
    """`dagster dev` on this repository's workspace.

    `dagster dev` stays the way to run webserver + daemon + code server on one machine until the
    `dg` CLI (a separate package and project layout) is adopted; its notice saying so is ours to
    silence, not the operator's to read at every start."""
    return [sys.executable, "-W", f"ignore:{DEV_SUPERSEDED_NOTICE}", "-m", "dagster", "dev", "-h", host,
            "-p", str(port), "-w", str(REPO_ROOT / "workspace.yaml")]


def _run_tree(command: list[str], env: dict[str, str], cwd: Path, lock_fd: int) -> int:
    """Run `dagster dev` and everything it starts as one process group, until it ends or a signal
    stops it; then stop the group whole. Returns the exit status for `haic ui`.

    The tree is its own session: a signal for `haic` (Ctrl-C, SIGTERM, SIGHUP when the terminal
    goes) reaches only us, and we pass SIGINT to every process of the group, as Ctrl-C at a terminal
    would, then SIGKILL to what is left after STOP_GRACE_S (at once on a second signal). `dagster
    dev` gets SIGTERM from the kernel if we die (kill -9), and stops its webserver and daemon itself;
    it holds the single-UI lock too (inherited), so the lock lasts until the daemon has stopped.
    Run from DAGSTER_HOME, so the only dagster.yaml in sight is the one in use; runs log to this
    terminal at INFO (dagster.yaml's python_logs).

    The signals stay blocked in `haic ui` and are taken with sigwaitinfo: nothing interrupts the
    start or the stop half-way, and a signal that comes before `dagster dev` has started still counts."""
    awaited = {*STOP_SIGNALS, signal.SIGCHLD}
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, awaited)
    try:
        parent = os.getpid()
        process = subprocess.Popen(command, env=env, cwd=cwd, start_new_session=True, pass_fds=(lock_fd,),
                                   preexec_fn=lambda: _child_of_ui(parent, mask))
        while True:
            received = signal.sigwaitinfo(awaited).si_signo
            if received in STOP_SIGNALS:
                _say(f"haic ui: {signal.Signals(received).name}: stopping the webserver, the daemon and "
                     "the code server")
                _stop_tree(process)
                _say("haic ui: stopped")
                return 0
            if process.poll() is not None:  # dagster dev ended on its own (it failed to start, or crashed)
                _stop_tree(process)
                return process.returncode
    finally:
        while set(signal.sigpending()) & set(STOP_SIGNALS):  # taken here, not fatal after the unblock
            signal.sigtimedwait(STOP_SIGNALS, 0)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)


def _child_of_ui(parent: int, mask) -> None:
    """In `dagster dev`, before it starts: the signal mask `haic ui` had, and SIGTERM from the kernel
    (its graceful stop) when `haic ui` dies."""
    signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    die_with_parent(signal.SIGTERM, parent=parent)


def _stop_tree(process: subprocess.Popen) -> None:
    """Stop the group of `process` whole; a second signal meanwhile skips the rest of the grace."""
    stop_group(process.pid, STOP_GRACE_S, leader=process,
               hurry=lambda: bool(set(signal.sigpending()) & set(STOP_SIGNALS)))
    process.wait()


def _say(line: str) -> None:
    try:
        print(line, flush=True)
    except OSError:  # SIGHUP: the terminal is gone
        pass


def _single_ui_lock(dagster_home: Path):
    """An exclusive lock on DAGSTER_HOME/.haic-ui.lock for the life of this process and of `dagster
    dev` (which inherits it), or None when another `haic ui` holds it (a second UI would start a
    second daemon on the same instance)."""
    import fcntl

    handle = open(dagster_home / ".haic-ui.lock", "w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


def cmd_home(args: argparse.Namespace) -> int:
    layout = haic_home()
    for name in ("root", "dagster", "landing", "tables", "media", "cache", "exports", "annotations", "warehouse"):
        print(f"{name:<12} {getattr(layout, name)}")
    return 0
