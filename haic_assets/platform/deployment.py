"""How runs are placed in a cluster: Kubernetes pod settings per kind of step, and the LLM
providers' concurrency pools and run tags.

Nothing here imports dagster-k8s (not a dependency): `dagster-k8s/config` is a plain run/op tag
that the K8sRunLauncher and k8s_job_executor read when the Helm deployment uses them
(deploy/helm/values.yaml). Locally the tags are ignored.

The stage factory (platform/stage.py) applies them by a stage's `kind`; the jobs that call a
provider carry `llm_run_tags` (platform/jobs.py).
"""

from __future__ import annotations

from copy import deepcopy
from typing import Any


K8S_CONFIG_TAG = "dagster-k8s/config"

# Op-level concurrency pools, one per LLM provider: every op that calls a provider names its pool.
# Limits are set on the instance (`dagster instance concurrency set llm_gemini 4`); unset pools
# get `concurrency.pools.default_limit` of the instance's dagster.yaml.
LLM_POOLS: dict[str, str] = {"gemini": "llm_gemini", "openai": "llm_openai"}

# Run-level tag the production instance's tag_concurrency_limits count (deploy/dagster.production.yaml).
LLM_PROVIDER_TAG = "haic/llm_provider"

GPU_NODE_LABEL = "haic.io/node-pool"

_POD_SETTINGS: dict[str, dict[str, Any]] = {
    # Pose estimation: one GPU, on the GPU node pool, tolerating its taint.
    "pose": {
        "container_config": {
            "resources": {
                "requests": {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": "1"},
                "limits": {"memory": "16Gi", "nvidia.com/gpu": "1"},
            },
        },
        "pod_spec_config": {
            "node_selector": {GPU_NODE_LABEL: "gpu"},
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        },
    },
    # Decoding, scene detection, cutting: CPU-bound, on the general CPU pool.
    "decode": {
        "container_config": {
            "resources": {
                "requests": {"cpu": "2", "memory": "4Gi"},
                "limits": {"cpu": "4", "memory": "8Gi"},
            },
        },
        "pod_spec_config": {"node_selector": {GPU_NODE_LABEL: "cpu"}},
    },
}


def k8s_op_tags(kind: str) -> dict[str, dict[str, Any]]:
    """`op_tags` for a step of this kind ('pose' or 'decode') under the k8s_job_executor."""
    if kind not in _POD_SETTINGS:
        raise ValueError(f"unknown step kind {kind!r}: choose one of {sorted(_POD_SETTINGS)}")
    return {K8S_CONFIG_TAG: deepcopy(_POD_SETTINGS[kind])}


def llm_run_tags(provider: str) -> dict[str, str]:
    """Run tags that put a run under its provider's run-level limit."""
    if provider not in LLM_POOLS:
        raise ValueError(f"unknown LLM provider {provider!r}: choose one of {sorted(LLM_POOLS)}")
    return {LLM_PROVIDER_TAG: provider}

