"""A real Dask cluster on 127.0.0.1 for the Dask executor tests: a scheduler and two worker processes
(`dask` CLI, logs in one folder), and whatever else the test starts beside them, all stopped at the end."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.helpers import wait_until
from tests.timing import limit

DASK = Path(sys.executable).parent / "dask"
WORKERS = ("worker_1", "worker_2")


@dataclass
class DaskCluster:
    folder: Path  # every process's log: <name>.log
    env: dict
    address: str = ""
    workers: list[subprocess.Popen] = field(default_factory=list)
    processes: list[subprocess.Popen] = field(default_factory=list)  # stopped, last first, at the end

    def start(self, args: list[str], log_name: str, env: dict | None = None) -> subprocess.Popen:
        """Start a process of the cluster's (in `folder`, output to `log_name`), stopped with it."""
        log = self.folder / log_name
        process = subprocess.Popen(args, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                                   env=self.env if env is None else env, cwd=self.folder)
        self.processes.append(process)
        return process


@contextmanager
def dask_cluster(folder: Path, env: dict, worker_options: Sequence[str] = ()) -> Iterator[DaskCluster]:
    """A scheduler on a free port and two one-thread workers without nanny (`worker_options` added),
    once both have joined; on exit every process started through it is terminated (killed if it hangs)."""
    folder.mkdir()
    cluster = DaskCluster(folder, env)
    scheduler_file = folder / "scheduler.json"
    try:
        cluster.start([str(DASK), "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                       "--scheduler-file", str(scheduler_file)], "scheduler.log")
        cluster.address = wait_until(lambda: scheduler_file.is_file() and json.loads(scheduler_file.read_text())["address"],
                                     120, "the scheduler", interval_s=0.1)
        cluster.workers = [cluster.start([str(DASK), "worker", cluster.address, "--nthreads", "1", "--no-nanny",
                                          "--no-dashboard", "--host", "127.0.0.1", "--name", name, *worker_options],
                                         f"{name}.log") for name in WORKERS]
        wait_until(lambda: sum("Starting established connection" in (folder / f"{name}.log").read_text()
                               for name in WORKERS) == len(WORKERS), 120, "two workers to join", interval_s=0.1)
        yield cluster
    finally:
        for process in reversed(cluster.processes):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=limit(20))
                except subprocess.TimeoutExpired:
                    process.kill()
