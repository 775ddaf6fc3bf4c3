"""The multiprocess executor's steps start from the fork server that binds them to their run
(haic_platform/run_bound_steps.py), unless a run's config names another start method."""

from __future__ import annotations

from haic_assets.definitions import build_definitions
from haic_platform.run_bound_steps import (FORK_SERVER_CHILDREN, run_bound_multiprocess_executor,
                                                  with_run_bound_steps)


def test_a_multiprocess_config_without_a_start_method_gets_the_fork_server_of_run_bound_steps():
    assert with_run_bound_steps({"multiprocess": {"max_concurrent": 2}}) == {"multiprocess": {
        "max_concurrent": 2, "start_method": {"forkserver": {"preload_modules": [FORK_SERVER_CHILDREN]}}}}


def test_in_process_runs_and_an_explicit_start_method_are_left_as_they_are():
    for config in ({"in_process": {}}, {"multiprocess": {"start_method": {"spawn": {}}}}):
        assert with_run_bound_steps(config) is config


def test_every_job_runs_on_it_by_default(tmp_path, monkeypatch):
    monkeypatch.setenv("HAIC_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("HAIC_EXECUTOR", raising=False)
    defs = build_definitions()
    assert {job.executor_def for job in defs.resolve_all_job_defs()} == {run_bound_multiprocess_executor}
