"""The same 200 captions online and through a batch job: calls, wall time to results, cost.

A local Gemini server (the test double in tests/llm_servers.py, in its own process) answers
every online request after `--latency` seconds (0.5 s: a stand-in, not Gemini's latency) and
finishes a batch job after one status read; the batch side polls every `--poll` seconds (the
llm_batch_sensor polls every 300 s in production, and Google's target for a batch job is 24 h,
usually much less). Both sides use the real google-genai client, the same clip and prompts and
the same cache layout, and price tokens at Gemini 2.5 Pro's list price (USD 1.25 / 10 per
million input / output tokens, prompts up to 200K tokens) with the batch discount (50 %).
The fake reports `--input-tokens` / `--output-tokens` per answer (defaults: the estimate in
bench/plan_inputs.json). Writes bench/results/llm_batch.json.

Run: .venv/bin/python bench/bench_llm_batch.py [--items 200] [--latency 0.5] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from haic_resources.llm.batch import BatchJobs  # noqa: E402
from haic_resources.llm.concurrency import map_concurrent  # noqa: E402
from haic_resources.llm.gemini import GeminiClient  # noqa: E402
from haic_resources.llm.types import TokenPrices  # noqa: E402
from tests.llm_servers import SMALL_CLIP, FakeGeminiServer  # noqa: E402

PRICES = TokenPrices(1.25, 10.0)  # Gemini 2.5 Pro, USD per million tokens (prompts <= 200K tokens)


def _serve(options: dict, urls: mp.Queue, stop: mp.Event, stats: mp.Queue) -> None:
    with FakeGeminiServer("There is 1 subject in the video. ...", **options) as server:
        urls.put(server.base_url)
        stop.wait()
        stats.put({"requests": dict(server.requests), "batch_items": server.batch_items})


def run_side(mode: str, args, clip: Path) -> dict:
    urls, stats, stop = mp.Queue(), mp.Queue(), mp.Event()
    options = {"latency_s": args.latency, "input_tokens": args.input_tokens, "output_tokens": args.output_tokens}
    child = mp.Process(target=_serve, args=(options, urls, stop, stats), daemon=True)
    child.start()
    try:
        base_url = urls.get(timeout=30)
        with tempfile.TemporaryDirectory() as cache:
            client = GeminiClient(api_key="bench-key", base_url=base_url, model="gemini-2.5-pro", timeout_s=60,
                                  concurrency=args.concurrency, cache_dir=cache, prices=PRICES)
            calls = [client.video_call(clip, f"Describe the people in this clip (take {i}).")
                     for i in range(args.items)]
            started = time.perf_counter()
            if mode == "online":
                outcomes = map_concurrent(client.answer, calls, args.concurrency)
                answered = sum(o.ok for o in outcomes)
                polls = 0
            else:
                jobs = BatchJobs(client)
                submitted = jobs.submit(calls, "bench")
                polls, answered = 0, 0
                for job_id, part in submitted.items():
                    while not jobs.status(job_id).done:
                        polls += 1
                        time.sleep(args.poll)
                    answered += sum(not isinstance(o, Exception) for o in jobs.collect(job_id, part).values())
            wall_s = time.perf_counter() - started
            usage = client.usage_snapshot()
    finally:
        stop.set()
    server = stats.get(timeout=30)
    child.join(timeout=30)
    return {"mode": mode, "items": args.items, "answered": answered, "wall_s_to_results": round(wall_s, 3),
            "http_requests": sum(server["requests"].values()), "requests_by_kind": server["requests"],
            "generation_requests": server["requests"].get("generateContent", 0) + server["batch_items"],
            "status_polls": polls, "input_tokens": usage["input_tokens"], "output_tokens": usage["output_tokens"],
            "cost_usd": round(usage["cost_usd"], 4)}


def main() -> int:
    plan_inputs = json.loads((REPO / "bench" / "plan_inputs.json").read_text())["figures"]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--latency", type=float, default=0.5)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--poll", type=float, default=0.5)
    parser.add_argument("--input-tokens", type=int, default=round(plan_inputs["caption_input_tokens"]["value"]))
    parser.add_argument("--output-tokens", type=int, default=round(plan_inputs["caption_output_tokens"]["value"]))
    parser.add_argument("--media", type=Path,
                        default=Path(os.environ.get("HAIC_TEST_MEDIA", REPO.parent / "shared" / "media")))
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "llm_batch.json")
    args = parser.parse_args()
    clip = args.media / "videos" / SMALL_CLIP
    runs = [run_side("online", args, clip), run_side("batch", args, clip)]
    online, batch = runs
    for r in runs:
        print(f"{r['mode']:>6}: {r['answered']}/{r['items']} answered, {r['http_requests']} HTTP requests, "
              f"{r['wall_s_to_results']:.2f} s to results, ${r['cost_usd']:.4f}")
    report = {"benchmark": "llm_batch", "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
              "prices_usd_per_million": {"input": PRICES.input_per_million, "output": PRICES.output_per_million,
                                         "batch_discount": 0.5},
              "runs": runs, "cost_ratio_batch_over_online": round(batch["cost_usd"] / online["cost_usd"], 4),
              "http_requests_ratio_batch_over_online": round(batch["http_requests"] / online["http_requests"], 4)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
