"""`haic ui` stops whole, however it is asked to: SIGTERM (a service manager, `kill`) and SIGHUP (the
terminal went away) stop dagster dev, the webserver, the daemon and the code server within a few
seconds, a run in progress included, and the next `haic ui` on the home starts exactly one daemon.
After kill -9 of `haic ui` the tree stops too, and the single-UI lock lasts as long as the daemon does.

Real `haic ui` processes on free ports, their trees read from /proc."""

from __future__ import annotations

import fcntl
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from dagster import DagsterInstance
from dagster._core.instance.ref import InstanceRef

from haic_assets.platform.partitions import source_shards
from haic_resources.storage.home import prepare_dagster_home
from tests.dagster_dev import DagsterDev, free_port, wait_until_loaded
from tests.held_fetch import PARTITION, land_remote_shard, stalling  # noqa: F401 (fixture)
from tests.helpers import REPO_ROOT, wait_until
from tests.process_tree import command_line, describe, descendants, still_alive, with_environment
from tests.timing import limit

pytestmark = pytest.mark.slow  # each test starts two UIs

DAEMON = "dagster._daemon run"


class Ui:
    """A `haic ui` started as a person starts it, in its own session (as a terminal's job)."""

    def __init__(self, home: Path, log: Path):
        self.home, self.log, self.port = home, log, free_port()
        env = {**os.environ, "HAIC_HOME": str(home), "HAIC_FETCH_OPEN_NETWORKS": "127.0.0.1/32"}
        env.pop("HAIC_PROFILE", None)
        with log.open("ab") as out:
            self.process = subprocess.Popen([sys.executable, "-m", "haic_cli", "ui", "--port", str(self.port)],
                                            env=env, cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        self.server = DagsterDev(f"http://127.0.0.1:{self.port}", log, self.process)
        self.tree: list = []

    def wait_until_up(self) -> list:
        """Once its GraphQL API answers with the code location loaded: its whole tree, with one daemon."""
        wait_until_loaded(self.server, self.process)
        self.tree = descendants(self.process.pid)
        daemons = [p for p in self.tree if DAEMON in command_line(p.pid)]
        assert len(daemons) == 1, describe(self.tree)
        return self.tree

    def clean_up(self) -> None:
        """Whatever a failed test left of this UI, killed."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        for process in still_alive(self.tree) + with_environment("DAGSTER_HOME", str(self.home / "dagster")):
            try:
                os.kill(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def daemons_of(home: Path) -> list:
    """Every live dagster daemon on this home's instance, whoever started it."""
    return [p for p in with_environment("DAGSTER_HOME", str(home / "dagster")) if DAEMON in command_line(p.pid)]


def answers(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def assert_all_gone(tree: list, home: Path, port: int) -> None:
    left = still_alive(tree)
    assert not left, f"left running:\n{describe(left)}"
    assert not with_environment("DAGSTER_HOME", str(home / "dagster"))
    assert not answers(port)


def lock_is_free(home: Path) -> bool:
    with open(home / "dagster" / ".haic-ui.lock", "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(handle, fcntl.LOCK_UN)
        return True


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_signal_stops_the_whole_tree_and_the_next_ui_starts_one_daemon(tmp_path, signum, stalling, monkeypatch):
    home, log = tmp_path / "home", tmp_path / "ui.log"
    monkeypatch.setenv("HAIC_HOME", str(home))
    monkeypatch.delenv("HAIC_PROFILE", raising=False)
    land_remote_shard(home, stalling.url("b.mp4"))
    dagster_home = prepare_dagster_home()
    with DagsterInstance.from_ref(InstanceRef.from_dir(str(dagster_home))) as instance:
        instance.add_dynamic_partitions(source_shards.name, [PARTITION])  # before the UI: no sensor run
    first = Ui(home, log)
    try:
        first.wait_until_up()
        if signum == signal.SIGTERM:  # with a run in progress: its worker, its step, the step's decoder
            first.server.launch_run("curate_source", PARTITION, ["raw_metadata", "metadata_filtered", "videos"])
            wait_until(lambda: stalling.requests, 300, "the run's videos step to fetch its video", log)
        tree = descendants(first.process.pid)
        os.kill(first.process.pid, signum)  # to `haic` alone, as `kill` or a closing terminal sends it
        assert first.process.wait(timeout=limit(30)) == 0, log.read_text()[-3000:]
        assert_all_gone(tree, home, first.port)
    finally:
        first.clean_up()
    assert lock_is_free(home)

    started = time.time()
    second = Ui(home, log)
    try:
        second_tree = second.wait_until_up()
        assert [p.pid for p in daemons_of(home)] == [p.pid for p in second_tree if DAEMON in command_line(p.pid)]
        with DagsterInstance.from_ref(InstanceRef.from_dir(str(home / "dagster"))) as instance:
            # The daemon is at work: every daemon type's latest heartbeat is its own.
            def beating():
                beats = instance.get_daemon_heartbeats().values()
                return beats and all(b.timestamp >= started for b in beats) and {b.daemon_id for b in beats}
            assert len(wait_until(beating, 120, "the second daemon's heartbeats", log)) == 1
        os.kill(second.process.pid, signal.SIGTERM)
        assert second.process.wait(timeout=limit(30)) == 0
        assert_all_gone(second_tree, home, second.port)
    finally:
        second.clean_up()
    assert "Another" not in log.read_text()  # "Another BACKFILL daemon is still sending heartbeats"


def test_kill_9_of_haic_ui_stops_the_tree_and_the_lock_lasts_as_long_as_the_daemon(tmp_path):
    home, log = tmp_path / "home", tmp_path / "ui.log"
    ui = Ui(home, log)
    try:
        tree = ui.wait_until_up()
        (daemon,) = [p for p in tree if DAEMON in command_line(p.pid)]
        os.kill(ui.process.pid, signal.SIGKILL)
        ui.process.wait()
        # From here on, whenever the daemon is seen alive, the lock must be held: sampled until it is gone.
        samples, deadline = 0, time.monotonic() + limit(90)  # dagster dev gives its daemon 60 s, then kills it
        while still_alive([daemon]) and time.monotonic() < deadline:
            free = lock_is_free(home)
            assert not (free and still_alive([daemon])), "the lock was free while the daemon ran"
            samples += 1
            time.sleep(0.05)
        assert not still_alive([daemon]), "the daemon outlived `haic ui` for good"
        assert samples > 0  # the daemon outlived `haic ui` (dagster dev stopped it), and the lock with it
        wait_until(lambda: not still_alive(tree), 30, "the tree of the killed `haic ui` to stop", log)
        assert_all_gone(tree, home, ui.port)
    finally:
        ui.clean_up()
    assert lock_is_free(home)
