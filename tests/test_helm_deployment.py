"""The deployment as shipped (deploy/helm/values.yaml + deploy/helm/settings.yaml + deploy/Dockerfile)
puts each step where it belongs.

The definitions are loaded with exactly the environment the Helm values give the code server (the
env list, the Secrets' keys, the settings ConfigMap at the path HAIC_SETTINGS names); a run is made
on an instance whose run launcher is the `K8sRunLauncher` the values configure, with the code
location's image and the container context the chart passes to launched runs; then dagster-k8s's
own `K8sStepHandler.launch_step` builds each step's Kubernetes Job (its API client only records the
Job it is handed), and `kubernetes-validate --strict` checks that Job against Kubernetes' schemas.

What `helm` would render (the chart's container context, the run launcher's instance config) is
mirrored from chart 1.13.27's templates here; `helm template` itself is on the operator's checklist
(docs/runbook.md, "Deploy on Kubernetes"), as no helm binary is installed here.
"""

from __future__ import annotations

import re

import pytest
import yaml

from tests.helpers import REPO_ROOT

dagster_k8s = pytest.importorskip("dagster_k8s")
kubernetes_validate = pytest.importorskip("kubernetes_validate")

from dagster._core.definitions.job_base import InMemoryJob  # noqa: E402
from dagster._core.definitions.reconstruct import ReconstructableRepository  # noqa: E402
from dagster._core.execution.api import create_execution_plan  # noqa: E402
from dagster._core.execution.context.system import PlanData, PlanOrchestrationContext  # noqa: E402
from dagster._core.execution.context_creation_job import create_context_free_log_manager  # noqa: E402
from dagster._core.execution.retries import RetryMode  # noqa: E402
from dagster._core.executor.init import InitExecutorContext  # noqa: E402
from dagster._core.executor.step_delegating.step_handler.base import StepHandlerContext  # noqa: E402
from dagster._core.system_config.objects import ResolvedRunConfig  # noqa: E402
from dagster._core.test_utils import create_run_for_test, instance_for_test  # noqa: E402
from dagster._grpc.types import ExecuteStepArgs  # noqa: E402
from dagster_k8s.executor import K8sStepHandler  # noqa: E402
from kubernetes.client import ApiClient  # noqa: E402

DEPLOY = REPO_ROOT / "deploy"
VALUES = yaml.safe_load((DEPLOY / "helm" / "values.yaml").read_text())
SETTINGS = yaml.safe_load((DEPLOY / "helm" / "settings.yaml").read_text())
(DEPLOYMENT,) = VALUES["dagster-user-deployments"]["deployments"]
RELEASE = NAMESPACE = "haic"  # helm upgrade --install haic dagster/dagster -n haic -f deploy/helm/values.yaml
KUBERNETES = "1.33.0"  # the oldest Kubernetes the Job must be valid for
CPU_IMAGE = f"{DEPLOYMENT['image']['repository']}:{DEPLOYMENT['image']['tag']}"
GPU_IMAGE = SETTINGS["platform"]["k8s"]["pose_image"]
SECRET_KEYS = {"haic-llm-keys": ("GEMINI_API_KEY", "OPENAI_API_KEY"),
               "haic-aws": ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}


class RecordingBatchApi:
    """Where the step handler hands its Job: kept, not sent (there is no cluster here)."""

    def __init__(self):
        self.jobs = []

    def create_namespaced_job(self, body, namespace, **_):
        self.jobs.append((namespace, body))


def chart_container_context() -> dict:
    """What the chart passes to launched runs (DAGSTER_CLI_API_GRPC_CONTAINER_CONTEXT), as its helper
    `dagsterUserDeployments.k8sContainerContext` renders it from the deployment's values."""
    return {"k8s": {
        "image_pull_policy": DEPLOYMENT["image"]["pullPolicy"],
        "env_config_maps": [f"{RELEASE}-dagster-user-deployments-{DEPLOYMENT['name']}-user-env"],
        "env_secrets": [s["name"] for s in DEPLOYMENT["envSecrets"]],
        "volume_mounts": DEPLOYMENT["volumeMounts"], "volumes": DEPLOYMENT["volumes"],
        "resources": DEPLOYMENT["resources"], "namespace": NAMESPACE,
        "service_account_name": f"{RELEASE}-dagster-user-deployments-user-deployments",
        "env": DEPLOYMENT["env"]}}


def chart_run_launcher(kubeconfig: str) -> dict:
    """The instance's run launcher as the chart writes it from `runLauncher` (only the cluster
    credentials differ: a kubeconfig file instead of the pod's in-cluster account)."""
    launcher = VALUES["runLauncher"]["config"]["k8sRunLauncher"]
    run_config = launcher["runK8sConfig"]
    return {"module": "dagster_k8s", "class": "K8sRunLauncher", "config": {
        "instance_config_map": f"{RELEASE}-dagster-instance", "dagster_home": "/opt/dagster/dagster_home",
        "postgres_password_secret": VALUES["global"]["postgresqlSecretName"],
        "service_account_name": f"{RELEASE}-dagster", "job_namespace": launcher["jobNamespace"],
        "env_secrets": [s["name"] for s in launcher["envSecrets"]],
        "run_k8s_config": {"container_config": run_config["containerConfig"],
                           "pod_spec_config": run_config["podSpecConfig"]},
        "load_incluster_config": False, "kubeconfig_file": kubeconfig}}


@pytest.fixture
def deployment_env(tmp_path, monkeypatch):
    """Exactly the code server's environment under the values (and, by includeConfigInLaunchedRuns,
    every run and step pod's): its env list, the Secrets' keys, the settings ConfigMap where
    HAIC_SETTINGS points. Only HAIC_HOME moves to a temporary folder (the image's /var/lib/haic)."""
    import os

    for name in list(os.environ):
        if name.startswith(("HAIC_", "GEMINI_", "OPENAI_", "DAGSTER_")):
            monkeypatch.delenv(name)
    env = {e["name"]: e["value"] for e in DEPLOYMENT["env"]}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for secret in DEPLOYMENT["envSecrets"]:
        for key in SECRET_KEYS[secret["name"]]:
            monkeypatch.setenv(key, f"{key.lower()}-from-the-secret")
    (mount,) = DEPLOYMENT["volumeMounts"]
    (volume,) = DEPLOYMENT["volumes"]
    assert (mount["name"], volume["configMap"]["name"]) == ("haic-settings", "haic-settings")
    assert env["HAIC_SETTINGS"] == f"{mount['mountPath']}/settings.yaml"  # the ConfigMap's key settings.yaml
    monkeypatch.setenv("HAIC_SETTINGS", str(DEPLOY / "helm" / "settings.yaml"))
    monkeypatch.setenv("HAIC_HOME", str(tmp_path / "home"))
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "test",
        "clusters": [{"name": "test", "cluster": {"server": "https://127.0.0.1:6443"}}],
        "users": [{"name": "test", "user": {"token": "unused"}}],
        "contexts": [{"name": "test", "context": {"cluster": "test", "user": "test"}}]}))
    return str(kubeconfig)


def step_jobs(kubeconfig: str, step_keys: list[str]) -> dict[str, dict]:
    """Each step's Kubernetes Job, as dagster-k8s's step handler builds it for a run of curate_source
    (camelCase manifest, as the API server receives it)."""
    from haic_assets.definitions import build_definitions

    job_def = build_definitions().resolve_job_def("curate_source")
    assert job_def.executor_def.name == "k8s"
    job = InMemoryJob(job_def)
    executor_config = ResolvedRunConfig.build(job_def, {}).execution.execution_engine_config
    origin = ReconstructableRepository.for_module(
        "haic_assets.definitions", "defs", working_directory=str(REPO_ROOT), container_image=CPU_IMAGE,
        container_context=chart_container_context()).get_reconstructable_job("curate_source").get_python_origin()
    jobs = {}
    with instance_for_test(overrides={"run_launcher": chart_run_launcher(kubeconfig)}) as instance:
        executor = job_def.executor_def.executor_creation_fn(InitExecutorContext(
            job=job, executor_def=job_def.executor_def, executor_config=executor_config, instance=instance))
        api = RecordingBatchApi()
        handler = K8sStepHandler(  # the executor's own handler, with its API client recording
            image=executor_config.get("job_image"), container_context=executor._step_handler._executor_container_context,
            load_incluster_config=False, kubeconfig_file=kubeconfig, k8s_client_batch_api=api,
            per_step_k8s_config=executor_config.get("per_step_k8s_config", {}))
        run = create_run_for_test(instance, job_name="curate_source", job_code_origin=origin,
                                  tags={"dagster/partition": "webvid__results_10M_train_000.csv"})
        plan = create_execution_plan(job, run_config={}, tags=run.tags)
        context = PlanOrchestrationContext(
            plan_data=PlanData(job=job, dagster_run=run, instance=instance, execution_plan=plan, raise_on_error=True,
                               retry_mode=RetryMode.DISABLED),
            log_manager=create_context_free_log_manager(instance, run), executor=executor, output_capture=None)
        for step_key in step_keys:
            list(handler.launch_step(StepHandlerContext(
                instance=instance, plan_context=context, steps=[plan.get_step_by_key(step_key)],
                execute_step_args=ExecuteStepArgs(origin, run.run_id, [step_key]), dagster_run=run)))
            namespace, body = api.jobs[-1]
            assert namespace == NAMESPACE
            jobs[step_key] = ApiClient().sanitize_for_serialization(body)
    return jobs


def container(manifest: dict) -> dict:
    (main,) = manifest["spec"]["template"]["spec"]["containers"]
    return main


def env_of(manifest: dict) -> dict[str, str]:
    return {e["name"]: e.get("value") for e in container(manifest)["env"]}


def test_each_step_of_a_run_is_a_valid_job_on_its_pool_with_its_image_and_resources(deployment_env):
    jobs = step_jobs(deployment_env, ["human_presence", "clips", "videos", "captions", "metadata_filtered"])
    for step, manifest in jobs.items():
        kubernetes_validate.validate(manifest, KUBERNETES, strict=True)  # raises on any schema error
        main, pod = container(manifest), manifest["spec"]["template"]["spec"]
        assert manifest["metadata"]["labels"]["dagster/op"] == step
        assert main["args"][:3] == ["dagster", "api", "execute_step"], step  # a step worker: the k8s executor's
        env = env_of(manifest)
        # the deployment's settings and people model reach every step (they decide the stages' code versions)
        assert env["HAIC_SETTINGS"] == "/etc/haic/settings.yaml" and env["HAIC_POSE_BACKEND"] == "batched", step
        assert {"mountPath": "/etc/haic", "name": "haic-settings", "readOnly": True} in main["volumeMounts"], step
        assert {"configMap": {"name": "haic-settings"}, "name": "haic-settings"} in pod["volumes"], step
        assert {"secretRef": {"name": "haic-llm-keys"}} in main["envFrom"], step
        assert not re.search(r"-from-the-secret", str(manifest)), f"{step}: a secret's value is in its Job"

    pose = jobs["human_presence"]
    assert container(pose)["image"] == GPU_IMAGE
    assert container(pose)["resources"] == {"limits": {"memory": "48Gi", "nvidia.com/gpu": "1"},
                                            "requests": {"cpu": "15", "memory": "48Gi", "nvidia.com/gpu": "1"}}
    assert pose["spec"]["template"]["spec"]["nodeSelector"] == {"haic.io/node-pool": "gpu"}
    assert {"effect": "NoSchedule", "key": "nvidia.com/gpu", "operator": "Exists"} in \
        pose["spec"]["template"]["spec"]["tolerations"]
    assert env_of(pose)["HAIC_POSE_DEVICE"] == "cuda"
    assert env_of(pose)["NVIDIA_DRIVER_CAPABILITIES"] == "compute,utility,video"  # NVDEC's library too

    for step in ("clips", "videos"):  # decode steps
        decode = jobs[step]
        assert container(decode)["image"] == CPU_IMAGE, step
        assert container(decode)["resources"] == {"limits": {"cpu": "4", "memory": "8Gi"},
                                                  "requests": {"cpu": "2", "memory": "4Gi"}}, step
        assert decode["spec"]["template"]["spec"]["nodeSelector"] == {"haic.io/node-pool": "cpu"}, step
        assert "HAIC_POSE_DEVICE" not in env_of(decode), step

    for step in ("captions", "metadata_filtered"):  # the executor's default step pod
        assert container(jobs[step])["image"] == CPU_IMAGE, step
        assert "nvidia.com/gpu" not in str(container(jobs[step])["resources"]), step


def test_a_job_kubernetes_would_refuse_is_refused_here(deployment_env):
    """The validation really checks: a misspelt field and a wrong type are errors."""
    manifest = step_jobs(deployment_env, ["clips"])["clips"]
    container(manifest)["resourcez"] = container(manifest).pop("resources")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(manifest, KUBERNETES, strict=True)
    manifest = step_jobs(deployment_env, ["clips"])["clips"]
    manifest["spec"]["backoffLimit"] = "twice"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(manifest, KUBERNETES, strict=True)


def test_the_gpu_image_is_the_cpu_image_with_the_gpu_extra():
    from tests.test_deploy_configs import dockerfile_instructions

    instructions = dockerfile_instructions(DEPLOY / "Dockerfile")
    assert ("ARG", 'EXTRAS="k8s dask"') in instructions
    syncs = [value for name, value in instructions if name == "RUN" and "uv sync --frozen" in value]
    assert len(syncs) == 2 and all("$(printf -- '--extra %s ' $EXTRAS)" in value for value in syncs)
    assert GPU_IMAGE.rsplit(":", 1)[1] == DEPLOYMENT["image"]["tag"]  # one commit, two images
