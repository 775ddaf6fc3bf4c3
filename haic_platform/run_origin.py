"""`haic run` executes in its own process, yet the UI must be able to re-execute its runs (from
failure, say, after a kill -9 that run monitoring marked failed).

The webserver re-executes a run through its *remote origin*: the code location and repository
the run came from. `execute_in_process` records none, so its runs cannot be re-executed. Here
the run is created with the origin of this workspace's code location (workspace.yaml: module
`haic_assets.definitions`, location `haic`, Dagster's repository `__repository__`) and the
job's code origin, then executed in this process with the in-process executor (as before: one
process, the run worker whose pid the run monitor checks). The UI offers "Re-execute" and
"Re-execute from failure" for it like for any run it launched itself.
"""

from __future__ import annotations

import sys
from typing import Mapping

from dagster import AssetKey
from dagster._core.definitions.reconstruct import ReconstructableRepository
from dagster._core.execution.api import execute_run
from dagster._core.remote_origin import ManagedGrpcPythonEnvCodeLocationOrigin, RemoteRepositoryOrigin
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin

from haic_resources.storage.home import REPO_ROOT

MODULE, FUNCTION, LOCATION, REPOSITORY = "haic_assets.definitions", "defs", "haic", "__repository__"
IN_PROCESS = {"execution": {"config": {"in_process": {}}}}


def execute_with_origin(instance, job_name: str, partition_key: str, asset_selection=None,
                        tags: Mapping[str, str] | None = None, run_config: Mapping | None = None,
                        run_id: str | None = None):
    """Create the run of `job_name` for `partition_key` with the workspace's origin and execute it here.
    Returns (run id, success)."""
    recon = ReconstructableRepository.for_module(MODULE, FUNCTION, working_directory=str(REPO_ROOT)) \
        .get_reconstructable_job(job_name)
    job = recon.get_definition()
    selection = frozenset(AssetKey.from_coercible(k) for k in asset_selection) if asset_selection else None
    if selection is not None:
        recon, job = recon.get_subset(asset_selection=selection), job.get_subset(asset_selection=selection)
    target = LoadableTargetOrigin(executable_path=sys.executable, module_name=MODULE, working_directory=str(REPO_ROOT))
    origin = RemoteRepositoryOrigin(ManagedGrpcPythonEnvCodeLocationOrigin(target, location_name=LOCATION),
                                    REPOSITORY).get_job_origin(job_name)
    config = {**job.get_run_config_for_partition_key(partition_key), **IN_PROCESS, **(run_config or {})}
    run = instance.create_run_for_job(
        job_def=job, run_id=run_id, run_config=config, asset_selection=selection, remote_job_origin=origin,
        job_code_origin=recon.get_python_origin(),
        tags={**job.get_tags_for_partition_key(partition_key, selected_asset_keys=selection), **(tags or {})})
    result = execute_run(recon, run, instance)
    return run.run_id, result.success
