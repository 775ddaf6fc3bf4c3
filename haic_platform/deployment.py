"""How runs are placed in a cluster: Kubernetes pod settings and Dask resources per kind of step,
and the LLM providers' concurrency pools and run tags.

Nothing here imports dagster-k8s or dagster-dask (the optional extras): `dagster-k8s/config` is a
plain op tag that the k8s_job_executor reads, `dagster-dask/resource_requirements` one that the
Dask executor passes to the scheduler (platform/executors.py wires either when `platform.executor`
says so). Elsewhere the tags are ignored. Pod sizes, the pose steps' image (the GPU stack) and
their environment come from settings (`platform: {k8s: {...}}`, `K8sSettings`).

The stage factory (platform/stage.py) applies them by a stage's `kind`; the jobs that call a
provider carry `llm_run_tags` (platform/jobs.py).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


K8S_CONFIG_TAG = "dagster-k8s/config"
# A pose step takes one unit of the Dask worker resource GPU: it runs only on workers started with
# `--resources GPU=1` (one per GPU), one at a time each (docs/runbook.md).
DASK_RESOURCES_TAG = "dagster-dask/resource_requirements"
DASK_POSE_RESOURCES = {"GPU": 1}

# Op-level concurrency pools, one per LLM provider: every op that calls a provider names its pool.
# Limits are set on the instance (`dagster instance concurrency set llm_gemini 4`); unset pools
# get `concurrency.pools.default_limit` of the instance's dagster.yaml.
LLM_POOLS: dict[str, str] = {"gemini": "llm_gemini", "openai": "llm_openai"}

# Run-level tag the production instance's tag_concurrency_limits count (deploy/dagster.production.yaml).
LLM_PROVIDER_TAG = "haic/llm_provider"

GPU_NODE_LABEL = "haic.io/node-pool"
STEP_POD_KINDS = ("pose", "decode")


class K8sSettings(BaseModel):
    """`platform: {k8s: ...}` in settings.yaml: the k8s_job_executor's config and the pods of each kind
    of step (platform/executors.py). The defaults are the Helm deployment's (deploy/helm/)."""

    model_config = ConfigDict(extra="forbid")

    job_namespace: str = Field(default="haic", description="namespace of the step pods")
    max_concurrent: int = Field(default=8, ge=1, description="step pods at once, per run")
    env_secrets: list[str] = Field(default=["haic-llm-keys", "haic-aws"],
                                   description="Kubernetes secrets whose keys become each step's environment")
    node_pool_label: str = Field(default=GPU_NODE_LABEL, description="node label that names the node pool")
    step_cpu: str = Field(default="1", description="CPU request of a step pod of no particular kind")
    step_memory: str = Field(default="2Gi", description="memory request of such a pod")
    step_memory_limit: str = Field(default="4Gi", description="memory limit of such a pod")
    pose_gpus: int = Field(default=1, ge=0, description="GPUs of a pose step (person detection and keypoints)")
    pose_cpu: str = Field(default="4", description="CPU request of a pose step")
    pose_memory: str = Field(default="16Gi", description="memory request and limit of a pose step")
    gpu_pool: str = Field(default="gpu", description="node pool of pose steps (label value)")
    pose_image: str = Field(default="", description="image of pose steps, built with the `gpu` extra "
                                                    "(deploy/Dockerfile, EXTRAS); empty: the run's image")
    pose_env: dict[str, str] = Field(
        default={"HAIC_POSE_DEVICE": "cuda", "NVIDIA_DRIVER_CAPABILITIES": "compute,utility,video"},
        description="environment of pose steps: the model on the GPU (the device is not part of the code "
                    "version), and the driver's video libraries (NVDEC) mounted by the NVIDIA runtime")
    decode_cpu: str = Field(default="2", description="CPU request of a decode step (fetch, probe, scenes, cutting)")
    decode_cpu_limit: str = Field(default="4", description="CPU limit of a decode step")
    decode_memory: str = Field(default="4Gi", description="memory request of a decode step")
    decode_memory_limit: str = Field(default="8Gi", description="memory limit of a decode step")
    cpu_pool: str = Field(default="cpu", description="node pool of decode steps (label value)")


def _pod_settings(kind: str, k8s: K8sSettings) -> dict[str, Any]:
    if kind == "pose":  # one GPU (by default), on the GPU node pool, tolerating its taint, in the GPU image
        gpus = {"nvidia.com/gpu": str(k8s.pose_gpus)} if k8s.pose_gpus else {}
        image = {"image": k8s.pose_image} if k8s.pose_image else {}
        return {
            "container_config": {**image,
                                 "env": [{"name": name, "value": value} for name, value in k8s.pose_env.items()],
                                 "resources": {"requests": {"cpu": k8s.pose_cpu, "memory": k8s.pose_memory, **gpus},
                                               "limits": {"memory": k8s.pose_memory, **gpus}}},
            "pod_spec_config": {
                "node_selector": {k8s.node_pool_label: k8s.gpu_pool},
                "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}] if gpus else [],
            },
        }
    # decode: decoding, scene detection, cutting are CPU-bound, on the general CPU pool
    return {
        "container_config": {"resources": {"requests": {"cpu": k8s.decode_cpu, "memory": k8s.decode_memory},
                                           "limits": {"cpu": k8s.decode_cpu_limit, "memory": k8s.decode_memory_limit}}},
        "pod_spec_config": {"node_selector": {k8s.node_pool_label: k8s.cpu_pool}},
    }


def k8s_op_tags(kind: str, k8s: K8sSettings | None = None) -> dict[str, dict[str, Any]]:
    """`op_tags` for a step of this kind ('pose' or 'decode'): its pod under the k8s_job_executor,
    and for a pose step its GPU under the Dask executor."""
    if kind not in STEP_POD_KINDS:
        raise ValueError(f"unknown step kind {kind!r}: choose one of {sorted(STEP_POD_KINDS)}")
    tags = {K8S_CONFIG_TAG: _pod_settings(kind, k8s or K8sSettings())}
    if kind == "pose":
        tags[DASK_RESOURCES_TAG] = dict(DASK_POSE_RESOURCES)
    return tags


def k8s_executor_config(k8s: K8sSettings) -> dict[str, Any]:
    """The k8s_job_executor's config: every step in its own pod; pose and decode steps add their
    resources through their op tags (`k8s_op_tags`)."""
    return {
        "job_namespace": k8s.job_namespace,
        "max_concurrent": k8s.max_concurrent,
        "env_secrets": list(k8s.env_secrets),
        "step_k8s_config": {"container_config": {"resources": {
            "requests": {"cpu": k8s.step_cpu, "memory": k8s.step_memory},
            "limits": {"memory": k8s.step_memory_limit}}}},
    }


def llm_run_tags(provider: str) -> dict[str, str]:
    """Run tags that put a run under its provider's run-level limit."""
    if provider not in LLM_POOLS:
        raise ValueError(f"unknown LLM provider {provider!r}: choose one of {sorted(LLM_POOLS)}")
    return {LLM_PROVIDER_TAG: provider}

