"""Kubernetes wired: with `platform.executor: k8s` every job runs on dagster-k8s's k8s_job_executor,
configured from settings; the run config, the executor's config and each step's pod tags pass
dagster-k8s's own config types; the jobs that call an LLM provider carry its run tag.

Needs dagster-k8s (the `k8s` extra, also in the `test` extra); skipped when it is absent."""

from __future__ import annotations

import json

import pytest
import yaml
from dagster._config import validate_config
from dagster._core.system_config.objects import ResolvedRunConfig

from haic_platform.deployment import K8S_CONFIG_TAG, K8sSettings, k8s_executor_config
from tests.helpers import REPO_ROOT, home_without_llm

dagster_k8s = pytest.importorskip("dagster_k8s")
from dagster_k8s import k8s_job_executor  # noqa: E402
from dagster_k8s.job import get_user_defined_k8s_config  # noqa: E402

SETTINGS = """
platform:
  executor: k8s
  k8s:
    job_namespace: curation
    max_concurrent: 3
    pose_gpus: 2
    decode_cpu: "3"
    gpu_pool: a100
"""


def k8s_definitions(tmp_path, monkeypatch):
    home = home_without_llm(tmp_path, monkeypatch)
    home.mkdir(parents=True)
    (home / "settings.yaml").write_text(SETTINGS)
    from haic_assets.definitions import build_definitions

    return build_definitions()


def test_every_job_runs_on_the_k8s_job_executor_configured_from_settings(tmp_path, monkeypatch):
    defs = k8s_definitions(tmp_path, monkeypatch)
    job = defs.resolve_job_def("curate_source")
    assert job.executor_def.name == "k8s"
    execution = ResolvedRunConfig.build(job, {}).execution  # dagster resolves it through dagster-k8s's schema
    assert execution.execution_engine_name == "k8s"
    config = execution.execution_engine_config
    assert (config["job_namespace"], config["max_concurrent"]) == ("curation", 3)
    assert config["env_secrets"] == ["haic-llm-keys", "haic-aws"]
    assert config["step_k8s_config"]["container_config"]["resources"]["requests"] == {"cpu": "1", "memory": "2Gi"}
    for name in ("haicbench_batch", "haicbench_release", "evaluate_model"):
        assert defs.resolve_job_def(name).executor_def.name == "k8s", name


def test_pose_steps_ask_for_the_gpus_of_settings_and_decode_steps_for_the_cpu_pool(tmp_path, monkeypatch):
    job = k8s_definitions(tmp_path, monkeypatch).resolve_job_def("curate_source")
    pods = {}
    for node in job.graph.node_dict.values():
        tags = {k: (json.dumps(v) if not isinstance(v, str) else v) for k, v in node.tags.items()}
        if K8S_CONFIG_TAG in tags:
            pods[node.name] = get_user_defined_k8s_config(tags)  # dagster-k8s validates the tag here
    assert sorted(pods) == ["action_filtered", "clips", "human_presence", "videos"]
    pose = pods["human_presence"]
    assert pose.container_config["resources"]["limits"] == {"memory": "16Gi", "nvidia.com/gpu": "2"}
    assert pose.pod_spec_config["node_selector"] == {"haic.io/node-pool": "a100"}
    decode = pods["clips"]
    assert decode.container_config["resources"]["requests"] == {"cpu": "3", "memory": "4Gi"}
    assert decode.pod_spec_config["node_selector"] == {"haic.io/node-pool": "cpu"}
    assert "nvidia.com/gpu" not in decode.container_config["resources"]["limits"]


def test_the_helm_run_config_and_the_default_settings_pass_dagster_k8s_schemas():
    schema = k8s_job_executor.config_schema.config_type
    run_config = yaml.safe_load((REPO_ROOT / "deploy" / "helm" / "k8s_executor.run_config.yaml").read_text())
    result = validate_config(schema, run_config["execution"]["config"])
    assert result.success, result.errors
    assert validate_config(schema, k8s_executor_config(K8sSettings())).success
    wrong = dict(k8s_executor_config(K8sSettings()), max_concurrent="many")
    assert not validate_config(schema, wrong).success  # the schema really checks


def test_a_misspelt_k8s_setting_is_an_error_naming_it(tmp_path, monkeypatch):
    home = home_without_llm(tmp_path, monkeypatch)
    home.mkdir(parents=True)
    (home / "settings.yaml").write_text("platform:\n  k8s:\n    pose_gpu: 1\n")
    from haic_assets.definitions import build_definitions

    with pytest.raises(ValueError, match=r"platform\.k8s\.pose_gpu"):
        build_definitions()


def test_the_jobs_that_call_a_provider_carry_its_run_tag(tmp_path, monkeypatch):
    home_without_llm(tmp_path, monkeypatch)
    monkeypatch.setenv("GEMINI_API_KEY", "test-key-not-used")
    from haic_assets.definitions import build_definitions

    defs = build_definitions()
    tagged = {name: defs.resolve_job_def(name).tags.get("haic/llm_provider")
              for name in ("curate_source", "haicbench_batch", "evaluate_model", "haicbench_release",
                           "eval_leaderboard_job")}
    assert tagged == {"curate_source": "gemini", "haicbench_batch": "gemini", "evaluate_model": "gemini",
                      "haicbench_release": None, "eval_leaderboard_job": None}
