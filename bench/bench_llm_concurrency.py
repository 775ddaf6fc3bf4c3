"""Does the client-side concurrency bound deliver the throughput it promises?

A local OpenAI-compatible server (the test double in tests/llm_servers.py) adds 500 ms to every
call. 200 calls at concurrency C should take 200/C × 0.5 s if the bound is both enforced and
fully used; we require the wall time to be within (200/C × 0.5 s) / 0.95, and the server's own
peak of in-flight requests to equal C (never above). Results: bench/results/llm_concurrency.json.

Run: .venv/bin/python bench/bench_llm_concurrency.py [--calls 200] [--latency 0.5] [--concurrency 16 8]
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from haic_resources.llm.concurrency import map_concurrent  # noqa: E402
from haic_resources.llm.types import GenerationSettings  # noqa: E402
from haic_resources.llm.openai_compatible import OpenAIClient  # noqa: E402
from tests.llm_servers import FakeOpenAIServer  # noqa: E402


def _serve(latency_s: float, urls: mp.Queue, stop: mp.Event, stats: mp.Queue) -> None:
    """Child process: the server gets its own interpreter (and GIL), as a remote API would."""
    with FakeOpenAIServer('{"ok": true}', latency_s=latency_s) as server:
        urls.put(server.base_url)
        stop.wait()
        stats.put({"requests": server.total_requests, "peak_in_flight": server.max_in_flight})


def run_once(calls: int, latency_s: float, concurrency: int) -> dict:
    urls, stats, stop = mp.Queue(), mp.Queue(), mp.Event()
    child = mp.Process(target=_serve, args=(latency_s, urls, stop, stats), daemon=True)
    child.start()
    try:
        base_url = urls.get(timeout=30)
        # No cache: every call must reach the server. Distinct prompts anyway.
        client = OpenAIClient(api_key="bench-key", base_url=f"{base_url}/v1", model="bench",
                              timeout_s=30, concurrency=concurrency, cache_dir=None)  # fmt: skip
        client.complete_json("warm-up")  # import-time and first-connection costs are not the bound's
        prompts = [f"bench call {i}" for i in range(calls)]
        started = time.perf_counter()
        outcomes = map_concurrent(
            lambda p: client.complete_json(p, settings=GenerationSettings()), prompts, limit=concurrency
        )
        wall_s = time.perf_counter() - started
    finally:
        stop.set()
    server = stats.get(timeout=30)
    child.join(timeout=30)
    ideal_s = calls / concurrency * latency_s
    # With whole calls of fixed latency, some worker makes ceil(calls/C) calls in sequence.
    floor_s = math.ceil(calls / concurrency) * latency_s
    return {
        "calls": calls,
        "concurrency": concurrency,
        "latency_s": latency_s,
        "wall_s": round(wall_s, 3),
        "ideal_s": round(ideal_s, 3),
        "limit_s": round(ideal_s / 0.95, 3),
        "whole_call_floor_s": round(floor_s, 3),
        "efficiency": round(ideal_s / wall_s, 4),
        "overhead_per_sequential_call_ms": round((wall_s - floor_s) / math.ceil(calls / concurrency) * 1000, 1),
        "calls_per_s": round(calls / wall_s, 2),
        "errors": sum(not o.ok for o in outcomes),
        "server_requests": server["requests"] - 1,  # minus the warm-up
        "server_peak_in_flight": server["peak_in_flight"],
        "passed": wall_s <= ideal_s / 0.95
        and server["peak_in_flight"] <= concurrency
        and all(o.ok for o in outcomes),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--latency", type=float, default=0.5)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[16, 8, 25])
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "llm_concurrency.json")
    args = parser.parse_args()

    runs = [run_once(args.calls, args.latency, c) for c in args.concurrency]
    for r in runs:
        print(f"C={r['concurrency']:>3}: {r['calls']} calls in {r['wall_s']:.2f}s "
              f"(ideal {r['ideal_s']:.2f}s, limit {r['limit_s']:.2f}s, efficiency {r['efficiency']:.1%}, "
              f"peak in flight {r['server_peak_in_flight']}) {'PASS' if r['passed'] else 'FAIL'}")  # fmt: skip
    report = {
        "benchmark": "llm_concurrency",
        "machine": {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count()},
        "runs": runs,
        "passed": all(r["passed"] for r in runs),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
