"""A preload module for a `multiprocessing` fork server: the server dies with the process that
started it, and every child the server forks dies with the server.

Dagster's multiprocess executor starts a run's steps from a fork server (start method
`forkserver`, haic_platform/executors.py) that preloads this module. Then kill -9 of the
run worker takes the whole run with it, at once, whatever the steps are doing:

    run worker --(its main thread exits)--> fork server gets SIGKILL --> each step gets SIGKILL

Both links are the kernel's PR_SET_PDEATHSIG. (Python's fork server would exit by itself only once
every step had exited too: each step holds the end of the pipe it watches.) A step's signal is set
right after the fork, before the step runs a line of its own; a step forked just as the server
died exits at once. Decoders that a step starts (haic_resources/video/isolation.py) end with it
through `exit_with_parent`.

Imported anywhere else, this module does nothing: it binds only the fork server that preloads it.
"""

from __future__ import annotations

import os
import sys
from multiprocessing import forkserver

from haic_resources.processes import die_with_parent


def _preloaded_by_a_fork_server() -> bool:
    """Whether this import is a fork server's preload of this very module (`forkserver.main`
    imports each preload module by name before it serves its first child)."""
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code is forkserver.main.__code__:
            return frame.f_locals.get("modname") == __name__
        frame = frame.f_back
    return False


def _bind_server_and_its_children() -> None:
    server = os.getpid()
    # The server dies with the thread of its client that started it (the executor's, for the run's
    # life). A client already gone before this line needs nothing more: the server reads end-of-file
    # on its `alive` pipe before it forks anything, and exits.
    die_with_parent()
    forked_by = [server]

    def before_fork() -> None:
        forked_by[0] = os.getpid()

    def in_child() -> None:
        if forked_by[0] == server:  # not a fork made later by a step itself: that is the step's business
            die_with_parent(parent=server)

    os.register_at_fork(before=before_fork, after_in_child=in_child)


if _preloaded_by_a_fork_server():
    _bind_server_and_its_children()
