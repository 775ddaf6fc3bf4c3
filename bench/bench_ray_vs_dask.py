"""Ray (dagster-ray's ray_executor) against our Dask executor, on the same job and the same local machine.

Issue 24 item 2 asks whether Ray serves clusters without Kubernetes better than Dask on four behaviours:
steps run on the cluster's workers, a GPU step goes only to a worker with a GPU, the LLM pools hold, and
a killed worker's step runs again without its upstream. bench/ray_vs_dask_job.py is the job (sleeps for
work, each execution logged); this script starts a Dask cluster on 127.0.0.1 (scheduler, two plain
workers, one worker with the resource GPU=1) and a Ray cluster (a head of 2 CPUs and no GPU, a second
node of 1 CPU and 1 GPU: Ray advertises the GPU it is told to, there is none), runs on each
  - `chain` (fetch → clips → human_presence[GPU]; fetch → captions_a, captions_b in pool llm_gemini of
    limit 1), timed: wall seconds of the run's process, where each step ran, the GPU step's worker or
    node, the most caption steps at once;
  - `kill_chain` (fetch → clips → after; clips has RetryPolicy(max_retries=1), which Dask ignores), whose
    clips process is killed (SIGKILL) as it starts: on Dask the worker (it runs the step in itself), on
    Ray the step's process and, in a second run, the Ray worker (the job supervisor actor) above it;
    how often each step ran, the run's status.
Results: bench/results/ray_vs_dask.json. Needs `ray[default]` and `dagster-ray` beside the `dask` extra (not
project dependencies): run it from an environment that has them, e.g.
  uv venv /tmp/rayenv --python 3.11 && uv pip install --python /tmp/rayenv -e '.[dask,test]' \
      'dagster-ray[executor]==0.4.8' 'ray[default]==2.60.0'
  /work/heavy /tmp/rayenv/bin/python bench/bench_ray_vs_dask.py
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.measure import write_result  # noqa: E402
from tests.dask_cluster import dask_cluster  # noqa: E402
from tests.helpers import wait_until  # noqa: E402

BIN = Path(sys.executable).parent
RAY_DASHBOARD = "http://127.0.0.1:8265"
RUNNER = """
import sys
from dagster import DagsterInstance, execute_job
from dagster._core.definitions.reconstruct import ReconstructableJob
with DagsterInstance.get() as instance:
    result = execute_job(ReconstructableJob.for_module("bench.ray_vs_dask_job", sys.argv[1]), instance=instance,
                         raise_on_error=False)
print("run", result.run_id, "SUCCESS" if result.success else "FAILURE")
"""


def executions(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


def most_at_once(windows: list[tuple[float, float]]) -> int:
    edges = sorted([(start, 1) for start, _ in windows] + [(end, -1) for _, end in windows])
    now = peak = 0
    for _, step in edges:
        now += step
        peak = max(peak, now)
    return peak


def run_job(folder: Path, env: dict, executor: str, job: str, tag: str, kill=None) -> dict:
    """One run of `job` in its own process; `kill(pid)` is called with clips's process when it starts."""
    marker = folder / "started.jsonl"
    marker.unlink(missing_ok=True)
    out = folder / f"{executor}_{tag}.log"
    t0 = time.perf_counter()
    runner = subprocess.Popen([sys.executable, "-c", RUNNER, job], cwd=REPO, env=dict(env, BENCH_EXECUTOR=executor),
                              stdout=out.open("wb"), stderr=subprocess.STDOUT)
    killed = None
    if kill is not None:
        first = wait_until(lambda: (marker.is_file() and marker.read_text().strip()
                                    and json.loads(marker.read_text().splitlines()[0])) or runner.poll() is not None,
                           600, "clips to start", interval_s=0.05)
        killed = kill(first["pid"]) if isinstance(first, dict) else "clips never started"
    code = runner.wait(timeout=900)
    wall = time.perf_counter() - t0
    text = out.read_text()
    verdicts = [line.split() for line in text.splitlines() if line.startswith("run ")]
    run_id, status = verdicts[-1][1:3] if verdicts else (None, f"no verdict (exit {code})")
    rows = [row for row in executions(folder / "executions.jsonl") if row["run_id"] == run_id]
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["step"]] = counts.get(row["step"], 0) + 1
    figures = {"status": status, "wall_s": round(wall, 2), "runner_pid": runner.pid,
               "executions": counts, "step_pids": sorted({row["pid"] for row in rows}),
               "steps_in_run_process": sorted({row["step"] for row in rows if row["pid"] == runner.pid}),
               "max_captions_at_once": most_at_once([(r["start"], r["end"]) for r in rows
                                                     if r["step"].startswith("captions")]) if job == "chain" else None,
               "killed": killed, "rows": rows}
    if status != "SUCCESS":
        figures["log_tail"] = text[-3000:]
    return figures


def set_pool_limit(dagster_home: Path) -> None:
    os.environ["DAGSTER_HOME"] = str(dagster_home)
    from dagster import DagsterInstance

    with DagsterInstance.get() as instance:
        instance.event_log_storage.set_concurrency_slots("llm_gemini", 1)  # dagster instance concurrency set


def bench_dask(folder: Path, env: dict) -> dict:
    with dask_cluster(folder / "dask", dict(env, DASK_DISTRIBUTED__WORKER__DAEMON="False")) as cluster:
        gpu_worker = cluster.start([str(BIN / "dask"), "worker", cluster.address, "--nthreads", "1", "--no-nanny",
                                    "--no-dashboard", "--host", "127.0.0.1", "--name", "gpu_worker",
                                    "--resources", "GPU=1"], "gpu_worker.log")
        wait_until(lambda: "Starting established connection" in (cluster.folder / "gpu_worker.log").read_text(),
                   120, "the GPU worker to join", interval_s=0.1)
        run_env = dict(env, BENCH_DASK_SCHEDULER=cluster.address, DASK_DISTRIBUTED__WORKER__DAEMON="False")
        workers = {w.pid: name for w, name in zip(cluster.workers, ("worker_1", "worker_2"))} | {gpu_worker.pid: "gpu_worker"}
        chain = run_job(folder, run_env, "dask", "chain", "chain")
        chain["worker_of_step"] = {r["step"]: workers.get(r["pid"], "not a worker") for r in chain["rows"]}

        def kill_worker(pid: int) -> dict:
            os.kill(pid, signal.SIGKILL)
            return {"what": f"the Dask worker running clips ({workers.get(pid, '?')})", "pid": pid}

        killed = run_job(folder, run_env, "dask", "kill_chain", "kill_worker", kill=kill_worker)
    return {"chain": chain, "kill_worker": killed}


def ray(*args: str, env: dict) -> str:
    done = subprocess.run([str(BIN / "ray"), *args], env=env, capture_output=True, text=True, timeout=600)
    if done.returncode:
        raise RuntimeError(f"ray {' '.join(args)}: {done.stdout[-2000:]}{done.stderr[-2000:]}")
    return done.stdout


def bench_ray(folder: Path, env: dict) -> dict:
    from ray.job_submission import JobSubmissionClient
    from ray.util.state import list_nodes

    # A step's Ray job runs the command `dagster api execute_step`: `dagster` must be on the nodes' PATH.
    ray_env = dict(env, RAY_ADDRESS="", PATH=f"{BIN}:{env['PATH']}")
    ray("start", "--head", "--num-cpus=2", "--num-gpus=0", "--port=6379", "--dashboard-host=127.0.0.1",
        "--disable-usage-stats", env=ray_env)
    try:
        ray("start", "--address=127.0.0.1:6379", "--num-cpus=1", "--num-gpus=1", "--disable-usage-stats", env=ray_env)
        wait_until(lambda: len(list_nodes(address="127.0.0.1:6379")) == 2, 300, "two Ray nodes", interval_s=1)
        nodes = {n.node_id: ("gpu_node" if n.resources_total.get("GPU") else "head") for n in list_nodes(address="127.0.0.1:6379")}
        client = JobSubmissionClient(RAY_DASHBOARD)
        run_env = dict(env, BENCH_RAY_ADDRESS=RAY_DASHBOARD)

        def node_of_steps() -> dict:
            return {job.metadata.get("dagster/op"): nodes.get(job.driver_node_id, job.driver_node_id)
                    for job in client.list_jobs() if job.metadata and job.metadata.get("dagster/op")}

        chain = run_job(folder, run_env, "ray", "chain", "chain")
        chain["node_of_step"] = node_of_steps()

        def kill_step(pid: int) -> dict:
            os.kill(pid, signal.SIGKILL)
            return {"what": "the step's process (the Ray job's entrypoint)", "pid": pid}

        killed_step = run_job(folder, run_env, "ray", "kill_chain", "kill_step", kill=kill_step)

        def kill_supervisor(pid: int) -> dict:
            """SIGKILL the Ray worker process above the step (`ray::JobSupervisor`; the step runs under a shell)."""
            worker = pid
            while not Path(f"/proc/{worker}/cmdline").read_bytes().startswith(b"ray::"):
                worker = int(Path(f"/proc/{worker}/stat").read_text().rsplit(")", 1)[1].split()[1])
                if worker <= 1:
                    return "no ray:: process above the step"
            name = Path(f"/proc/{worker}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:60]
            os.kill(worker, signal.SIGKILL)
            return {"what": f"the Ray worker above the step ({name})", "pid": worker}

        killed_worker = run_job(folder, run_env, "ray", "kill_chain", "kill_worker", kill=kill_supervisor)
        jobs = [{"submission_id": j.submission_id, "status": str(j.status), "message": (j.message or "")[:200]}
                for j in client.list_jobs() if j.metadata and j.metadata.get("dagster/op") == "clips"]
        return {"chain": chain, "kill_step": killed_step, "kill_worker": killed_worker, "clips_ray_jobs": jobs}
    finally:
        ray("stop", "--force", env=ray_env)


def main() -> None:
    missing = [name for name in ("ray", "dagster_ray", "dagster_dask") if importlib.util.find_spec(name) is None]
    if missing:
        sys.exit(f"bench_ray_vs_dask needs {', '.join(missing)} importable (see this script's docstring)")
    import dagster_ray
    import ray as ray_package

    with tempfile.TemporaryDirectory(prefix="ray_vs_dask_") as tmp:
        folder = Path(tmp)
        (folder / "dagster").mkdir()
        set_pool_limit(folder / "dagster")
        env = dict(os.environ, DAGSTER_HOME=str(folder / "dagster"), PYTHONPATH=str(REPO), BENCH_FOLDER=str(folder))
        dask = bench_dask(folder, env)
        ray_figures = bench_ray(folder, env)
    figures = {"machine": f"{platform.node()} ({os.cpu_count()} cores, shared)", "ray": ray_package.__version__,
               "dagster_ray": dagster_ray.__version__, "dask": dask, "ray_executor": ray_figures,
               "ray_over_dask_wall": round(ray_figures["chain"]["wall_s"] / dask["chain"]["wall_s"], 2)}
    print(json.dumps({k: v for k, v in figures.items()}, indent=1, default=str)[:6000])
    print(write_result("ray_vs_dask", figures))


if __name__ == "__main__":
    main()
