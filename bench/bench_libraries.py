"""Issue 29 item 4: each part we wrote by hand against the library that could replace it, in one run.

- JSON in model answers: the old fence regex + `json.loads` (and the caption judge's own candidate
  loop) against `haic_core.json_text` (json-repair): answers read, and microseconds per answer, on
  the QA corpus (tests/corpus/qa_answers) and judge answers in the shapes models write.
- The retry loop: the old hand-written loop against `call_with_retries` (tenacity): microseconds a
  call when the first attempt succeeds and when two attempts fail first, and that both make the
  same attempts, sleeps and `on_retry` calls.
- The LLM response cache: ours (a JSON file per answer) against diskcache (SQLite, values inline):
  puts and gets a second in one process; 4 processes writing and reading at once; answers that
  survive a kill -9 of the writer; bytes and files on disk.
- The media cache: staging a downloaded video of `--video-mb` MB, ours (a rename into place)
  against diskcache (`set(read=True)` copies the bytes into its own file).

    uv run --with diskcache==5.6.3 python bench/bench_libraries.py [--answers 5000] [--video-mb 512]
Writes bench/results/libraries.json.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import diskcache  # noqa: E402

from bench.measure import write_result  # noqa: E402
from haic_core.json_text import json_value  # noqa: E402
from haic_resources.llm.cache import ResponseCache  # noqa: E402
from haic_resources.llm.retry import RetryPolicy, backoff_delay_s, call_with_retries  # noqa: E402
from haic_resources.llm.types import LLMError  # noqa: E402


def per_call_us(fn, items, repeat: int = 3) -> float:
    """Best of `repeat` passes over `items`, in microseconds per item."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        for item in items:
            fn(item)
        best = min(best, time.perf_counter() - started)
    return 1e6 * best / len(items)


# ---- JSON in model answers ------------------------------------------------------------------

_OLD_FENCE = re.compile(r"```[A-Za-z0-9_-]*[ \t]*\r?\n?(.*?)```", re.S)


def old_unfenced(text: str) -> str:
    """haic_core/json_text.py before: a fence around the whole text (a fence in a fence too) removed."""
    stripped = text.strip()
    while stripped.startswith("```") and stripped.endswith("```") and len(stripped) > 6:
        blocks = [b for b in _OLD_FENCE.findall(stripped) if b.strip()]
        if len(blocks) != 1:
            break
        stripped = blocks[0].strip()
    return stripped


def old_judge_object(text: str):
    """caption_format.parse_judge_score before: the first fence, the text, the first {...} span."""
    candidates = [b for b in _OLD_FENCE.findall(text) if b.strip()][:1] + [text]
    start, end = text.find("{"), text.rfind("}")
    if 0 <= start < end:
        candidates.append(text[start:end + 1])
    for candidate in candidates:
        try:
            return json.loads(candidate.strip())
        except ValueError:
            continue
    return None


def new_value(text: str):
    try:
        return json_value(text)
    except ValueError:
        return None


def old_value(text: str):
    try:
        return json.loads(old_unfenced(text))
    except ValueError:
        return None


JUDGE_ANSWERS = [
    '{"score": 8, "reasons": ["clear structure"]}',
    '```json\n{"score": 8, "reasons": ["clear structure"]}\n```',
    'Here is my review:\n{"score": "8", "reasons": ["clear structure"]}\nThanks.',
    "```json\n{'score': 7, 'reasons': ['no audio',],}\n```",  # single quotes, trailing commas
    '```json\n```json\n{"score": 6, "reasons": []}\n```\n```',  # a fence in a fence
    '{"score": 9, "reasons": ["vivid", "complete"',  # cut off by max_output_tokens
    "The caption is good, 8/10.",
]


def bench_json() -> dict:
    corpus = [p.read_text() for p in sorted((REPO / "tests/corpus/qa_answers").glob("*.txt"))]
    texts = corpus + JUDGE_ANSWERS
    return {
        "answers": len(texts),
        "read_as_json_before": sum(old_value(t) is not None for t in texts),
        "read_as_json_after": sum(new_value(t) is not None for t in texts),
        "judge_objects_before": sum(isinstance(old_judge_object(t), dict) for t in JUDGE_ANSWERS),
        "judge_objects_after": sum(isinstance(new_value(t), dict) for t in JUDGE_ANSWERS),
        "judge_answers": len(JUDGE_ANSWERS),
        "us_per_answer_before": round(per_call_us(old_value, texts * 20), 2),
        "us_per_answer_after": round(per_call_us(new_value, texts * 20), 2),
        "us_per_plain_json_before": round(per_call_us(old_value, [JUDGE_ANSWERS[0]] * 2000), 2),
        "us_per_plain_json_after": round(per_call_us(new_value, [JUDGE_ANSWERS[0]] * 2000), 2),
    }


# ---- the retry loop -------------------------------------------------------------------------


def old_call_with_retries(attempt, policy, *, sleep=time.sleep, rng=random.random, on_retry=None):
    """haic_resources/llm/retry.py before: the hand-written loop."""
    attempts = 0
    while True:
        attempts += 1
        try:
            return attempt(), attempts
        except LLMError as exc:
            exc.attempts = attempts
            if not exc.retryable or attempts >= policy.max_attempts:
                raise
            delay = backoff_delay_s(attempts, policy, retry_after_s=exc.retry_after_s, rng=rng)
            if on_retry is not None:
                on_retry(attempts, exc, delay)
            sleep(delay)


def flaky(failures: int):
    left = [failures]

    def attempt():
        if left[0]:
            left[0] -= 1
            raise LLMError("rate_limited", "HTTP 429", retry_after_s=0.25 * left[0])
        return "ok"

    return attempt


def trace(loop, failures: int, policy: RetryPolicy) -> list:
    rng = random.Random(7)
    events: list = []
    try:
        events.append(loop(flaky(failures), policy, sleep=lambda s: events.append(("sleep", round(s, 9))),
                           rng=rng.random, on_retry=lambda n, e, d: events.append(("retry", n, e.kind, round(d, 9)))))
    except LLMError as exc:
        events.append(("gave up", exc.attempts))
    return events


def bench_retry() -> dict:
    policy = RetryPolicy(4, 1.0, 60.0)
    same = all(trace(old_call_with_retries, n, policy) == trace(call_with_retries, n, policy) for n in range(6))
    out = {"same_attempts_sleeps_and_retries": same}
    for name, loop in (("before", old_call_with_retries), ("after", call_with_retries)):
        out[f"us_first_attempt_ok_{name}"] = round(per_call_us(lambda _: loop(lambda: 1, policy), range(20000)), 2)
        out[f"us_two_failures_then_ok_{name}"] = round(per_call_us(
            lambda _: loop(flaky(2), policy, sleep=lambda s: None), range(5000)), 2)
    return out


# ---- the LLM response cache -----------------------------------------------------------------


class DiskcacheResponses:
    """The response cache's interface on diskcache: the entry's JSON text stored inline in SQLite."""

    def __init__(self, root) -> None:
        self.cache = diskcache.Cache(str(root), size_limit=2 ** 62, eviction_policy="none")

    def get(self, key: str):
        text = self.cache.get(key)
        return None if text is None else json.loads(text)

    def put(self, key: str, entry) -> None:
        self.cache.set(key, json.dumps(entry, ensure_ascii=False, sort_keys=True))


CACHES = {"ours": ResponseCache, "diskcache": DiskcacheResponses}


def entry(i: int) -> dict:
    caption = ("There is 1 subject in the video. The first subject is a young man with short hair "
               "who juggles a football with his feet. " * 12)
    return {"provider": "gemini", "model": "gemini-2.5-pro", "text": caption, "input_tokens": 9000 + i,
            "output_tokens": 300, "via": "online", "created_at": "2026-12-08T00:00:00+00:00",
            "raw_response": json.dumps({"candidates": [{"content": {"parts": [{"text": caption}]}}]})}


def key(writer: int, i: int) -> str:
    return f"{writer:02x}{i:062x}"


def _writer(kind: str, root: str, writer: int, count: int, start: mp.Event) -> None:
    cache = CACHES[kind](root)
    start.wait()
    for i in range(count):
        cache.put(key(writer, i), entry(i))
    for other in range(4):  # every writer reads every answer (a re-run in another process)
        for i in range(0, count, 10):
            assert cache.get(key(other, i)) is not None or other != writer


def disk_use(root: Path) -> tuple[int, int]:
    files = [p for p in root.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files), len(files)


def killed_writer(kind: str, root: Path) -> tuple[int, int]:
    """A writer killed with SIGKILL mid-stream: (answers it said were stored, those readable after)."""
    code = (f"import sys; sys.path.insert(0, {str(REPO)!r}); sys.path.insert(0, {str(REPO / 'bench')!r})\n"
            "from bench_libraries import CACHES, entry, key\n"
            f"cache = CACHES[{kind!r}]({str(root)!r})\n"
            "for i in range(10 ** 6):\n"
            "    cache.put(key(9, i), entry(i)); print(i, flush=True)\n")
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    acknowledged = -1
    for line in child.stdout:
        acknowledged = int(line)
        if acknowledged >= 1500:
            break
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    cache = CACHES[kind](root)
    readable = sum(cache.get(key(9, i)) == entry(i) for i in range(acknowledged + 1))
    return acknowledged + 1, readable


def bench_cache(answers: int, work: Path) -> dict:
    out: dict = {}
    for kind, make in CACHES.items():
        root = work / f"llm_{kind}"
        cache = make(root)
        started = time.perf_counter()
        for i in range(answers):
            cache.put(key(0, i), entry(i))
        put_s = time.perf_counter() - started
        started = time.perf_counter()
        hits = sum(cache.get(key(0, i)) is not None for i in range(answers))
        get_s = time.perf_counter() - started
        started = time.perf_counter()
        misses = sum(cache.get(key(1, i)) is None for i in range(answers))
        miss_s = time.perf_counter() - started
        size, files = disk_use(root)
        start = mp.Event()
        procs = [mp.Process(target=_writer, args=(kind, str(work / f"shared_{kind}"), w, answers // 4, start))
                 for w in range(4)]
        for p in procs:
            p.start()
        started = time.perf_counter()
        start.set()
        for p in procs:
            p.join()
        shared_s = time.perf_counter() - started
        stored, readable = killed_writer(kind, work / f"killed_{kind}")
        out[kind] = {"puts_per_s": round(answers / put_s), "hits_per_s": round(hits / get_s),
                     "misses_per_s": round(misses / miss_s), "bytes_per_answer": round(size / answers),
                     "files": files, "four_processes_s": round(shared_s, 3),
                     "four_processes_ok": all(p.exitcode == 0 for p in procs),
                     "kill9_acknowledged": stored, "kill9_readable": readable}
    ours, lib = out["ours"], out["diskcache"]
    out["ratios_diskcache_over_ours"] = {
        "puts_per_s": round(lib["puts_per_s"] / ours["puts_per_s"], 2),
        "hits_per_s": round(lib["hits_per_s"] / ours["hits_per_s"], 2),
        "four_processes_s": round(lib["four_processes_s"] / ours["four_processes_s"], 2),
        "bytes_per_answer": round(lib["bytes_per_answer"] / ours["bytes_per_answer"], 2)}
    return out


# ---- the media cache ------------------------------------------------------------------------


def bench_media(video_mb: int, work: Path) -> dict:
    """Staging one downloaded video: ours renames the finished download into place (the path the
    tables record); diskcache copies it into a file of its own naming."""
    out = {}
    for kind in ("ours", "diskcache"):
        part = work / f"{kind}.part"
        with open(part, "wb") as handle:
            for _ in range(video_mb):
                handle.write(os.urandom(1 << 20))
        os.sync()
        started = time.perf_counter()
        if kind == "ours":
            (work / "videos").mkdir(exist_ok=True)
            os.replace(part, work / "videos" / "abc.mp4")
        else:
            cache = diskcache.Cache(str(work / "dc_videos"), size_limit=10 * (video_mb << 20),
                                    eviction_policy="least-recently-used")
            with open(part, "rb") as handle:
                cache.set("abc.mp4", handle, read=True)
            part.unlink()
        out[f"stage_s_{kind}"] = round(time.perf_counter() - started, 4)
    out["video_mb"] = video_mb
    out["ratio_diskcache_over_ours"] = round(out["stage_s_diskcache"] / max(out["stage_s_ours"], 1e-6), 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--answers", type=int, default=5000)
    parser.add_argument("--video-mb", type=int, default=512)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench_libraries_"))
    try:
        results = {"json": bench_json(), "retry": bench_retry(), "llm_cache": bench_cache(args.answers, work),
                   "media_cache": bench_media(args.video_mb, work), "cpus": os.cpu_count(),
                   "diskcache": diskcache.__version__}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    write_result("libraries", results)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
