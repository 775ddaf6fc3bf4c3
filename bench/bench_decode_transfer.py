"""The decoder processes' hand-over, without a decoder: how many clips' frames per second can workers
send to the models' process (`run_isolated` with kept workers, a pickle through a pipe each)?

Each item returns what a decoder process returns for one clip: a `FrameSample` of `--frames` RGB frames
at the detector's long side (416 × 234, a 16:9 clip). Ratios, not timed asserts; run it on the machine
that matters (the GPU host has 16 cores; CI and laptops have fewer).

    uv run python bench/bench_decode_transfer.py --clips 200 --workers 2
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from haic_resources.video.frame_reader import FrameSample, SampledFrame  # noqa: E402
from haic_resources.video.isolation import close_workers, run_isolated  # noqa: E402


def fake_clip(frames: int) -> FrameSample:
    rng = np.random.default_rng(frames)
    image = rng.integers(0, 255, (234, 416, 3), dtype=np.uint8)
    return FrameSample([SampledFrame(float(k), float(k), image.copy(), 1280, 720) for k in range(frames)], 1280, 720,
                       frames)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clips", type=int, default=200)
    ap.add_argument("--frames", type=int, default=26, help="16 presence ∪ 1 fps pose samples of a ~10 s clip")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    kept: list = []
    run_isolated(fake_clip, [args.frames] * args.workers, workers=args.workers, reuse_workers=True, idle_workers=kept)
    t0 = time.perf_counter()
    results = run_isolated(fake_clip, [args.frames] * args.clips, workers=args.workers, reuse_workers=True,
                           idle_workers=kept)
    seconds = time.perf_counter() - t0
    close_workers(kept)
    mb = sum(f.image.nbytes for r in results for f in r.value.frames) / 1e6
    print(f"{args.clips} clips × {args.frames} frames ({mb / args.clips:.1f} MB a clip), {args.workers} workers: "
          f"{args.clips / seconds:.0f} clips/s, {mb / seconds:.0f} MB/s handed over")


if __name__ == "__main__":
    main()
