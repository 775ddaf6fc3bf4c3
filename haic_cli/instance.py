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

from haic_resources.storage.home import REPO_ROOT, haic_home, prepare_dagster_home

DEV_SUPERSEDED_NOTICE = "Function `dev_command` is superseded"


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
    # `dagster dev` stays the way to run webserver + daemon + code server on one machine until the
    # `dg` CLI (a separate package and project layout) is adopted; its notice saying so is ours to
    # silence, not the operator's to read at every start. Run from DAGSTER_HOME, so the only
    # dagster.yaml in sight is the one in use. Runs log to this terminal at INFO (dagster.yaml's
    # python_logs), not every DEBUG engine event.
    command = [sys.executable, "-W", f"ignore:{DEV_SUPERSEDED_NOTICE}", "-m", "dagster", "dev", "-h", args.host,
               "-p", str(args.port), "-w", str(REPO_ROOT / "workspace.yaml")]
    print(f"DAGSTER_HOME={env['DAGSTER_HOME']}; UI at http://{args.host}:{args.port} (Ctrl-C stops it)")
    process = subprocess.Popen(command, env=env, cwd=dagster_home)
    try:
        return process.wait()
    except KeyboardInterrupt:
        # At a terminal dagster dev gets the same Ctrl-C; when only we were interrupted, pass it on,
        # so its webserver and daemon shut down rather than outlive us.
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.terminate()
        print("haic ui: stopped")
        return 0
    finally:
        lock.close()


def _single_ui_lock(dagster_home: Path):
    """An exclusive lock on DAGSTER_HOME/.haic-ui.lock for the life of this process, or None when
    another `haic ui` holds it (a second UI would start a second daemon on the same instance)."""
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
