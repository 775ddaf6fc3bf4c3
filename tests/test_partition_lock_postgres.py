"""Issue 12 item 5, across hosts: where Dagster keeps its runs in PostgreSQL (the production
profile), a partition's lock is a PostgreSQL advisory lock, so two workers that share no file
system still never write one partition at once. Two processes with separate HAIC_HOMEs (as on two
pods) stand for the two workers; the real PostgreSQL of tests/test_production_profile.py holds the lock.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time

import psycopg2
import pytest
from dagster import DagsterInstance
from dagster._core.instance.ref import InstanceRef

from haic_platform.partition_lock import postgres_url_of
from haic_resources.storage.home import haic_home, prepare_dagster_home
from haic_resources.storage.postgres_lock import lock_key
from tests.helpers import REPO_ROOT
from tests.test_production_profile import PG_DB, PG_PASSWORD, PG_USER, postgres  # noqa: F401 (fixture)
from tests.timing import limit

pytestmark = [pytest.mark.services, pytest.mark.timeout(120)]

WORKER = """
import logging, sys
from haic_platform.partition_lock import partition_locks
logging.basicConfig(stream=sys.stderr, format="%(levelname)s %(message)s")
root, holder, url, keys = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
sys.stdin.readline()  # go
with partition_locks(root, keys, holder, logging.getLogger("worker"), postgres_url=url):
    print("in", flush=True)
    sys.stdin.readline()  # hold until told (or killed)
"""


def worker(tmp_path, name: str, url: str, *keys: str) -> subprocess.Popen:
    root = tmp_path / name  # a HAIC_HOME of its own: no file lock is shared
    return subprocess.Popen([sys.executable, "-c", WORKER, str(root), f"run {name} step videos", url, *keys],
                            cwd=REPO_ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def go(proc: subprocess.Popen) -> None:
    proc.stdin.write("\n")
    proc.stdin.flush()


def test_a_second_worker_on_another_host_waits_for_the_partition_and_gets_it_when_the_first_dies(
        postgres, tmp_path, monkeypatch):  # noqa: F811
    host, port = postgres
    for name, value in {"HAIC_HOME": str(tmp_path / "home"), "HAIC_PROFILE": "production", "HAIC_PG_USER": PG_USER,
                        "HAIC_PG_PASSWORD": PG_PASSWORD, "HAIC_PG_HOST": host, "HAIC_PG_PORT": str(port),
                        "HAIC_PG_DB": PG_DB}.items():
        monkeypatch.setenv(name, value)
    # The URL comes from the production instance, as a stage step gets it from context.instance.
    with DagsterInstance.from_ref(InstanceRef.from_dir(str(prepare_dagster_home(haic_home())))) as instance:
        url = postgres_url_of(instance)
    assert url == f"postgresql+psycopg2://{PG_USER}:{PG_PASSWORD}@{host}:{port}/{PG_DB}"

    # Both start (imports take seconds); the first takes its lock, then the second is told to go.
    first = worker(tmp_path, "first", url, "videos/web__a.csv")
    second = worker(tmp_path, "second", url, "videos/web__a.csv", "clips/web__a.csv")
    try:
        go(first)
        assert first.stdout.readline() == "in\n"
        go(second)
        warning = second.stderr.readline()
        assert re.fullmatch(r"WARNING partition videos/web__a\.csv is being written by run first step videos "
                            r"\(PostgreSQL session \d+ from 127\.0\.0\.1\); waiting for it\n", warning), warning
        time.sleep(1.0)
        assert second.poll() is None  # still waiting
        with psycopg2.connect(host=host, port=port, user=PG_USER, password=PG_PASSWORD, dbname=PG_DB) as conn:
            cur = conn.cursor()
            cur.execute("SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                        "WHERE l.locktype = 'advisory' AND l.granted ORDER BY 1")
            # The first holds videos/; the second holds clips/ (taken first: sorted order) and waits for videos/.
            assert [r[0] for r in cur.fetchall()] == ["run first step videos", "run second step videos"]
        first.send_signal(signal.SIGKILL)  # a dead worker's session ends, and its lock with it
        first.wait(limit(10))
        assert second.stdout.readline() == "in\n"
        go(second)
        assert second.wait(limit(20)) == 0
        assert PG_PASSWORD not in second.stderr.read()
    finally:
        for proc in (first, second):
            if proc.poll() is None:
                proc.kill()
                proc.wait(limit(10))
    # Nothing is held now: the lock of web__a is free for anyone.
    with psycopg2.connect(host=host, port=port, user=PG_USER, password=PG_PASSWORD, dbname=PG_DB) as conn:
        cur = conn.cursor()
        cur.execute("SELECT pg_try_advisory_lock(%s)", (lock_key("videos/web__a.csv"),))
        assert cur.fetchone()[0] is True
    assert not (tmp_path / "first" / "locks").exists() and not (tmp_path / "second" / "locks").exists()

