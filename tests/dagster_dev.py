"""`dagster dev` (webserver, daemon, code server) on 127.0.0.1 for a HAIC_HOME, and its GraphQL
API, as an operator drives them. Shared by the tests that need the real daemon."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

from haic_cli.instance import dev_command
from tests.helpers import REPO_ROOT, wait_until
from tests.timing import limit

LOCATION = "haic"
REPOSITORY = "__repository__"
TERMINAL = ("SUCCESS", "FAILURE", "CANCELED")

LOCATION_STATUS = """
{ workspaceOrError { ... on Workspace { locationEntries {
    name loadStatus locationOrLoadError { __typename ... on PythonError { message } } } } } }"""

LAUNCH_RUN = """
mutation($params: ExecutionParams!) { launchRun(executionParams: $params) {
  __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message }
  ... on RunConfigValidationInvalid { errors { message } } ... on InvalidSubsetError { message } } }"""

REEXECUTE = """
mutation($params: ReexecutionParams!) { launchRunReexecution(reexecutionParams: $params) {
  __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } } }"""

LAUNCH_BACKFILL = """
mutation($params: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $params) {
  __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message }
  ... on PartitionSetNotFoundError { message } ... on InvalidSubsetError { message } } }"""

BACKFILL = """
query($id: String!) { partitionBackfillOrError(backfillId: $id) {
  ... on PartitionBackfill { status runs(limit: 50) { runId status tags { key value } } } } }"""

RUN_EVENTS = """
query($id: ID!) { logsForRun(runId: $id, limit: 10000) { __typename ... on EventConnection { events {
  __typename ... on MessageEvent { message level stepKey } ... on ErrorEvent { error { message stack } } } } } }"""

RUN = """query($id: ID!) { runOrError(runId: $id) { ... on Run { runId status canTerminate } } }"""


def run_errors(graphql, run_id: str) -> str:
    """The error events of a run (step failures, run failure, engine errors with their stack tails), as
    text for an assertion message: a run that did not succeed says why in the test's output."""
    events = graphql(RUN_EVENTS, {"id": run_id})["logsForRun"]["events"]
    lines = []
    for event in events:
        error = event.get("error")
        if event.get("level") in ("ERROR", "CRITICAL") or error:
            lines.append(f"{event['__typename']} {event.get('stepKey') or ''}: {event.get('message', '')}")
            if error:
                lines.append(error["message"] + "".join(error["stack"][-6:]))
    return "\n".join(lines)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class DagsterDev:
    def __init__(self, base_url: str, log: Path, process: subprocess.Popen):
        self.base_url, self.log, self.process = base_url, log, process

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        request = urllib.request.Request(f"{self.base_url}/graphql", data=json.dumps(
            {"query": query, "variables": variables or {}}).encode(), headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=limit(30)) as response:
                body = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise AssertionError(f"GraphQL answered {exc.code}: {exc.read()[:2000]!r}") from None
        assert "errors" not in body, body["errors"]
        return body["data"]

    def wait_until(self, predicate, timeout_s: float, what: str, interval_s: float = 0.5):
        return wait_until(predicate, timeout_s, what, self.log, interval_s)

    def launch_run(self, job: str, partition: str, assets: list[str]) -> str:
        params = {"selector": {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY, "jobName": job,
                               "assetSelection": [{"path": [a]} for a in assets]},
                  "runConfigData": {}, "executionMetadata": {"tags": [{"key": "dagster/partition", "value": partition}]}}
        result = self.graphql(LAUNCH_RUN, {"params": params})["launchRun"]
        assert result["__typename"] == "LaunchRunSuccess", result
        return result["run"]["runId"]

    def reexecute_from_failure(self, run_id: str) -> str:
        result = self.graphql(REEXECUTE, {"params": {"parentRunId": run_id, "strategy": "FROM_FAILURE"}})
        result = result["launchRunReexecution"]
        assert result["__typename"] == "LaunchRunSuccess", result
        return result["run"]["runId"]

    def launch_backfill(self, partitions: list[str], assets: list[str]) -> str:
        params = {"partitionNames": partitions, "assetSelection": [{"path": [a]} for a in assets]}
        result = self.graphql(LAUNCH_BACKFILL, {"params": params})["launchPartitionBackfill"]
        assert result["__typename"] == "LaunchBackfillSuccess", result
        return result["backfillId"]

    def backfill(self, backfill_id: str) -> dict:
        return self.graphql(BACKFILL, {"id": backfill_id})["partitionBackfillOrError"]

    def run_status(self, run_id: str) -> str:
        return self.graphql(RUN, {"id": run_id})["runOrError"]["status"]

    def run_errors(self, run_id: str) -> str:
        return run_errors(self.graphql, run_id)

    def wait_for_run(self, run_id: str, timeout_s: float = 120) -> str:
        return self.wait_until(lambda: (s := self.run_status(run_id)) in TERMINAL and s, timeout_s,
                               f"run {run_id} to finish")


def wait_until_loaded(server: DagsterDev, process: subprocess.Popen, startup_timeout_s: float = 120) -> None:
    """Until the webserver answers GraphQL with the code location loaded (`process`: the `dagster dev`
    or `haic ui` serving it; its exit fails the test at once, with its log)."""
    def location_loaded():
        if process.poll() is not None:
            pytest.fail(f"the server process exited with {process.returncode}:\n{server.log.read_text()[-3000:]}")
        try:
            entries = server.graphql(LOCATION_STATUS)["workspaceOrError"]["locationEntries"]
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False
        if entries and entries[0]["loadStatus"] == "LOADED":
            loaded = entries[0]["locationOrLoadError"]
            assert loaded["__typename"] == "RepositoryLocation", loaded
            return True
        return False

    server.wait_until(location_loaded, startup_timeout_s, "the code location to load in dagster dev", 1.0)


@contextmanager
def dagster_dev(dagster_home: Path, log: Path, startup_timeout_s: float = 120) -> Iterator[DagsterDev]:
    """`dagster dev` with DAGSTER_HOME=`dagster_home` (and the caller's HAIC_HOME), on a free port,
    started as `haic ui` starts it."""
    port = free_port()
    env = dict(os.environ, DAGSTER_HOME=str(dagster_home))
    with log.open("wb") as out:
        process = subprocess.Popen(dev_command("127.0.0.1", port), cwd=dagster_home, env=env, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    server = DagsterDev(f"http://127.0.0.1:{port}", log, process)
    try:
        wait_until_loaded(server, process, startup_timeout_s)
        yield server
    finally:
        stop_process_group(process)


def stop_process_group(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=limit(20))
        except subprocess.TimeoutExpired:
            pass
    try:  # children that outlived dagster dev (or all of them, if it would not stop)
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(timeout=limit(10))
