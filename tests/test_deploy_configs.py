"""deploy/: every file parses, and each is accepted by the parser or schema of the tool that reads it.

Dagster's own instance-config validation checks the instance YAMLs; dagster-aws's EcsRunLauncher
schema checks the ECS launcher config; the Dockerfile is parsed with dockerfile-parse when it is
installed (else by a line parser with the same output). The `helm` binary is not available here,
so the Helm values are checked structurally for the keys the official chart reads.
"""

from __future__ import annotations

import io
import json
import re
import shutil
from pathlib import Path

import pytest
import yaml
from dagster._config import validate_config
from dagster._core.instance.config import dagster_instance_config

from haic_platform.deployment import K8S_CONFIG_TAG, LLM_POOLS, k8s_op_tags, llm_run_tags
from haic_resources.storage.home import PROFILES
from tests.helpers import REPO_ROOT

DEPLOY = REPO_ROOT / "deploy"
INSTANCE_YAMLS = [REPO_ROOT / "dagster.yaml", DEPLOY / "dagster.production.yaml", DEPLOY / "ecs" / "dagster.ecs.yaml"]
PG_ENV = {"username": {"env": "HAIC_PG_USER"}, "password": {"env": "HAIC_PG_PASSWORD"},
          "hostname": {"env": "HAIC_PG_HOST"}, "db_name": {"env": "HAIC_PG_DB"}, "port": {"env": "HAIC_PG_PORT"}}


def instance_config(path: Path, tmp_path: Path) -> dict:
    """The config Dagster itself loads from a dagster.yaml (raises on any schema error)."""
    shutil.copyfile(path, tmp_path / "dagster.yaml")
    config, custom_class = dagster_instance_config(str(tmp_path))
    assert custom_class is None
    return config


@pytest.mark.parametrize("path", sorted(DEPLOY.rglob("*.yaml")) + [REPO_ROOT / "dagster.yaml"],
                         ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_every_yaml_file_parses(path):
    assert isinstance(yaml.safe_load(path.read_text()), dict)


@pytest.mark.parametrize("path", INSTANCE_YAMLS, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_instance_yamls_pass_dagsters_own_schema(path, tmp_path):
    config = instance_config(path, tmp_path)
    assert config["telemetry"] == {"enabled": False} and config["nux"] == {"enabled": False}


def test_the_production_profile_is_postgres_from_env_with_a_queue_and_provider_limits(tmp_path):
    assert PROFILES["production"] == DEPLOY / "dagster.production.yaml"
    config = instance_config(PROFILES["production"], tmp_path)
    local = instance_config(PROFILES["local"], tmp_path)
    postgres_db = config["storage"]["postgres"]["postgres_db"]
    assert {k: postgres_db[k] for k in PG_ENV} == PG_ENV
    assert postgres_db["scheme"] == "postgresql+psycopg2"
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    # A limit's value is a string or a mapping ({applyLimitPerUniqueValue: true}): compare it as JSON.
    limits = {(lim["key"], json.dumps(lim["value"], sort_keys=True)): lim["limit"]
              for lim in config["concurrency"]["runs"]["tag_concurrency_limits"]}
    assert limits == {("haic/llm_provider", '"gemini"'): 2, ("haic/llm_provider", '"openai"'): 2,
                      ("dagster/partition", '{"applyLimitPerUniqueValue": true}'): 1}
    local_limits = local["concurrency"]["runs"]["tag_concurrency_limits"]
    assert [lim for lim in config["concurrency"]["runs"]["tag_concurrency_limits"]
            if lim["key"] == "dagster/partition"] == local_limits  # the same per-partition limit as local
    assert config["concurrency"]["pools"] == local["concurrency"]["pools"]
    assert config["sensors"] == local["sensors"] and config["schedules"] == local["schedules"]


def test_the_ecs_profile_launches_runs_with_dagster_aws_ecs_run_launcher(tmp_path):
    from dagster_aws.ecs import EcsRunLauncher

    config = instance_config(DEPLOY / "ecs" / "dagster.ecs.yaml", tmp_path)
    launcher = config["run_launcher"]
    assert (launcher["module"], launcher["class"]) == ("dagster_aws.ecs", "EcsRunLauncher")
    result = validate_config(EcsRunLauncher.config_type(), launcher["config"])
    assert result.success, result.errors
    assert {k: config["storage"]["postgres"]["postgres_db"][k] for k in PG_ENV} == PG_ENV
    secrets = {s["name"] for s in launcher["config"]["secrets"]}
    assert {"GEMINI_API_KEY", "OPENAI_API_KEY", "HAIC_PG_PASSWORD"} <= secrets


def test_the_ecs_task_definition_skeleton_runs_the_code_server():
    task = json.loads((DEPLOY / "ecs" / "task-definition.json").read_text())
    (container,) = task["containerDefinitions"]
    assert container["name"] == "run"  # EcsRunLauncher's default container_name
    assert container["command"][:3] == ["dagster", "code-server", "start"]
    assert {e["name"] for e in container["environment"]} >= {"HAIC_PROFILE", "HAIC_TABLES_URI", "HAIC_PG_HOST"}
    assert {s["name"] for s in container["secrets"]} == {"GEMINI_API_KEY", "OPENAI_API_KEY", "HAIC_PG_PASSWORD"}


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, value) pairs: dockerfile-parse's view of the file, or the same from a line parser."""
    try:
        from dockerfile_parse import DockerfileParser
    except ImportError:  # not in uv.lock: absent after `uv sync --frozen`
        joined = re.sub(r"\\\n", " ", path.read_text())
        lines = [line.strip() for line in joined.splitlines()]
        pairs = [tuple(line.split(None, 1)) for line in lines if line and not line.startswith("#")]
        return [(name.upper(), re.sub(r"\s+", " ", value)) for name, value in pairs]
    parser = DockerfileParser(fileobj=io.BytesIO(path.read_bytes()))
    return [(i["instruction"], re.sub(r"\s+", " ", i["value"])) for i in parser.structure
            if i["instruction"] != "COMMENT"]


def test_the_dockerfile_installs_the_lock_and_serves_the_code_location():
    instructions = dockerfile_instructions(DEPLOY / "Dockerfile")
    names = [name for name, _ in instructions]
    assert instructions[0] == ("FROM", "python:3.11-slim")
    assert set(names) <= {"FROM", "ENV", "RUN", "WORKDIR", "COPY", "USER", "EXPOSE", "CMD", "ARG", "LABEL"}
    runs = " && ".join(value for name, value in instructions if name == "RUN")
    assert "pip install --no-cache-dir uv==" in runs and "uv sync --frozen" in runs
    assert ("COPY", "pyproject.toml uv.lock README.md ./") in instructions and ("COPY", ". .") in instructions
    assert names.index("COPY") < names.index("RUN", names.index("WORKDIR"))  # lock before sync
    cmd = json.loads(dict(instructions)["CMD"])
    assert cmd == ["dagster", "code-server", "start", "-m", "haic_assets.definitions", "-h", "0.0.0.0", "-p", "4000"]
    assert ("EXPOSE", "4000") in instructions


def test_helm_values_have_the_keys_the_official_chart_reads():
    # `helm lint` / `helm template` would check these against the chart; no helm binary here.
    values = yaml.safe_load((DEPLOY / "helm" / "values.yaml").read_text())
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    assert values["dagster-user-deployments"]["enabled"] is True
    assert set(deployment["image"]) == {"repository", "tag", "pullPolicy"}
    assert deployment["dagsterApiGrpcArgs"] == ["-m", "haic_assets.definitions"]
    assert deployment["port"] == 4000
    env = {e["name"]: e["value"] for e in deployment["env"]}
    assert {"HAIC_TABLES_URI", "HAIC_MEDIA_URI", "HAIC_LANDING_URI"} <= set(env)
    assert not {"GEMINI_API_KEY", "OPENAI_API_KEY", "AWS_SECRET_ACCESS_KEY"} & set(env), "secrets belong in Secrets"
    secrets = {s["name"] for s in deployment["envSecrets"]}
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    assert {s["name"] for s in values["runLauncher"]["config"]["k8sRunLauncher"]["envSecrets"]} == secrets
    assert {"enabled", "postgresqlHost", "postgresqlUsername", "postgresqlDatabase"} <= set(values["postgresql"])
    assert values["global"]["postgresqlSecretName"]
    coordinator = values["dagsterDaemon"]["runCoordinator"]
    assert coordinator["type"] == "QueuedRunCoordinator"
    assert coordinator["config"]["queuedRunCoordinator"]["tagConcurrencyLimits"]


def test_the_k8s_executor_run_config_parses_to_an_execution_block():
    run_config = yaml.safe_load((DEPLOY / "helm" / "k8s_executor.run_config.yaml").read_text())
    assert set(run_config) == {"execution"}
    assert run_config["execution"]["config"]["env_secrets"] == ["haic-llm-keys", "haic-aws"]


def test_the_pose_step_asks_kubernetes_for_one_gpu_on_the_gpu_pool():
    pod = k8s_op_tags("pose")[K8S_CONFIG_TAG]
    assert pod["container_config"]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert pod["pod_spec_config"]["node_selector"]
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["pod_spec_config"]["tolerations"]


def test_decoding_runs_on_the_cpu_pool_without_a_gpu():
    pod = k8s_op_tags("decode")[K8S_CONFIG_TAG]
    resources = pod["container_config"]["resources"]
    assert resources["requests"] == {"cpu": "2", "memory": "4Gi"}
    assert "nvidia.com/gpu" not in resources["limits"]
    k8s_op_tags("decode")[K8S_CONFIG_TAG]["container_config"]["resources"]["requests"]["cpu"] = "99"
    assert k8s_op_tags("decode")[K8S_CONFIG_TAG]["container_config"]["resources"]["requests"]["cpu"] == "2"


def test_an_unknown_step_kind_or_provider_is_refused():
    with pytest.raises(ValueError, match="unknown step kind"):
        k8s_op_tags("gpu")
    with pytest.raises(ValueError, match="unknown LLM provider"):
        llm_run_tags("claude")


def test_providers_have_their_own_pools_and_run_tags():
    assert LLM_POOLS == {"gemini": "llm_gemini", "openai": "llm_openai"}
    assert llm_run_tags("gemini") == {"haic/llm_provider": "gemini"}
