"""Do repeats of one clip decode to the same frames? NVDEC threads from a cold start, as the GPU bench's first
end-to-end run meets them: per file, how many repeats NVDEC decoded and how many fell back to the CPU reader
(with NVDEC's message), and how many distinct frame sets the repeats gave (1 = repeatable).

    python bench/nvdec_repeatability.py --media ../shared/media --clips 240 --threads 12 --out rep.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_gpu_human_filters import clip_list  # noqa: E402
from cv2_reader import cv2_read  # noqa: E402
from haic_resources.pose.clip_batch import clip_times  # noqa: E402
from haic_resources.video import nvdec_reader  # noqa: E402


class Fallbacks(logging.Handler):
    def __init__(self):
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(record.getMessage()[:300])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--media", type=Path, required=True)
    ap.add_argument("--clips", type=int, default=240)
    ap.add_argument("--threads", type=int, default=12)
    ap.add_argument("--long-side", type=int, default=416)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    fallbacks = Fallbacks()
    logging.getLogger(nvdec_reader.__name__).addHandler(fallbacks)
    clips, names = clip_list(args.media, args.clips)

    def one(c):
        sample, used = nvdec_reader.read_frames(c.path, clip_times(c.start_s, c.end_s)[0], c.start_s, c.end_s,
                                                args.long_side, on_gpu=False, fallback=cv2_read)
        digest = hashlib.sha256(b"".join(f.image.tobytes() for f in sample.frames)).hexdigest()[:16]
        against_reference(c.clip_id.split("#")[0], used, sample)
        return c.clip_id.split("#")[0], used, digest

    # The reference: each file's samples decoded by NVDEC in this thread alone (repeatable there).
    import numpy as np

    reference = {}
    for c in clips[:len(names)]:
        sample, used = nvdec_reader.read_frames(c.path, clip_times(c.start_s, c.end_s)[0], c.start_s, c.end_s,
                                                args.long_side, on_gpu=False, fallback=cv2_read)
        reference[c.clip_id.split("#")[0]] = (used, np.stack([f.image for f in sample.frames]).astype(np.int16))
    differences: dict[str, list] = {}

    def against_reference(name, used, sample):
        ref_used, ref = reference[name]
        if used != "nvdec" or ref_used != "nvdec":
            return
        got = np.stack([f.image for f in sample.frames]).astype(np.int16)
        diff = np.abs(got - ref)
        per_frame = diff.reshape(len(diff), -1).max(axis=1)
        differences.setdefault(name, []).append({"max_abs": int(diff.max()), "mean_abs": round(float(diff.mean()), 4),
                                                 "frames_differing": int((per_frame > 0).sum()),
                                                 "frames": len(diff)})

    rounds = []
    for _ in range(args.rounds):
        with ThreadPoolExecutor(args.threads) as pool:
            rows = list(pool.map(one, clips))
        per_file: dict[str, dict] = {}
        for name, used, digest in rows:
            entry = per_file.setdefault(name, {"nvdec": 0, "cpu": 0, "frame_sets": set(), "by_reader": {}})
            entry[used] += 1
            entry["frame_sets"].add(digest)
            entry["by_reader"].setdefault(used, set()).add(digest)
        rounds.append({name: {"nvdec": e["nvdec"], "cpu": e["cpu"], "distinct_frame_sets": len(e["frame_sets"]),
                              "distinct_per_reader": {r: len(d) for r, d in e["by_reader"].items()}}
                       for name, e in per_file.items()})
    out = {"rounds": rounds, "fallback_messages": sorted(set(fallbacks.messages))[:20],
           "against_one_thread": {name: {"repeats": len(rows), "max_abs": max(r["max_abs"] for r in rows),
                                         "mean_abs_max": max(r["mean_abs"] for r in rows),
                                         "frames_differing_max": max(r["frames_differing"] for r in rows),
                                         "frames": rows[0]["frames"]}
                                  for name, rows in differences.items()}}
    args.out.write_text(json.dumps(out, indent=1))
    print(json.dumps(out, indent=1)[:5000])


if __name__ == "__main__":
    main()
