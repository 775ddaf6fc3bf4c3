"""Why do NVDEC repeats of one clip give different frames (bench/nvdec_repeatability.py)? Decode one clip's
samples several times in one thread, in several ways, and count the distinct frame sets each way gives
(1 = repeatable):
- as the reader does (`get_batch_frames_by_index`, then one stack);
- the same with the device synchronised between the decoder's call and the stack;
- each wanted frame fetched alone and cloned at once;
- the one-pass strategy (seek, decode forward, clone the wanted frames);
- the whole reader (`NvdecReader.read_frames_at`), in one thread, then in 12 threads.

    python bench/nvdec_race_probe.py --media ../shared/media --out probe.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from haic_resources.pose.clip_batch import clip_times  # noqa: E402
from haic_resources.video.nvdec_reader import NvdecReader  # noqa: E402
from tests.human_filter_chain import clip_window  # noqa: E402

CLIPS = ["mmaction2_demo_armwrestling.mp4", "sam2_juggle_1p.mp4"]


def digest(tensors) -> str:
    return hashlib.sha256(b"".join(t.cpu().numpy().tobytes() for t in tensors)).hexdigest()[:16]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--media", type=Path, required=True)
    ap.add_argument("--repeats", type=int, default=6)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    import torch

    reader = NvdecReader()
    out: dict = {}
    for name in CLIPS:
        path = str(args.media / "videos" / name)
        start, end = clip_window(args.media, name)
        times = clip_times(start, end)[0]
        decoder = reader._decoder(path)
        indices, _ = reader.frame_indices(decoder, times)
        unique = sorted(set(indices))

        def as_read():
            frames = decoder.get_batch_frames_by_index(unique)
            return [torch.stack([torch.from_dlpack(f) for f in frames])]

        def synced():
            frames = decoder.get_batch_frames_by_index(unique)
            torch.cuda.synchronize()
            return [torch.stack([torch.from_dlpack(f) for f in frames])]

        def one_by_one():
            kept = []
            for i in unique:
                frame = decoder.get_batch_frames_by_index([i])[0]
                kept.append(torch.from_dlpack(frame).clone())
            return kept

        def one_pass():
            return reader._frames_in_one_pass(decoder, unique)

        ways = {"as_read": as_read, "synced": synced, "one_by_one": one_by_one, "one_pass": one_pass}
        result = {}
        for label, way in ways.items():
            try:
                result[label] = len({digest(way()) for _ in range(args.repeats)})
            except Exception as exc:
                result[label] = f"{type(exc).__name__}: {exc}"[:300]
        whole = lambda: reader.read_frames_at(path, times, start, end, 416).frames  # noqa: E731
        result["reader_one_thread"] = len({hashlib.sha256(b"".join(f.image.tobytes() for f in whole())).hexdigest()
                                           for _ in range(args.repeats)})
        with ThreadPoolExecutor(12) as pool:
            sets = list(pool.map(lambda _: hashlib.sha256(b"".join(f.image.tobytes() for f in whole())).hexdigest(),
                                 range(24)))
        result["reader_12_threads"] = len(set(sets))
        out[name] = result
        print(name, result, flush=True)
    # Files in turn on one thread's decoder (reconfigured from file to file, as the reader does), against a
    # fresh decoder per read: distinct frame sets per file, the frame indices asked for, and the time.
    import time

    files = [(name, str(args.media / "videos" / name), *clip_window(args.media, name)) for name in
             ["mmaction2_demo_armwrestling.mp4", "sam2_juggle_1p.mp4", "mmaction2_basketball_2p.mp4", "sam2_dog_1p.mp4"]]
    for label, fresh in (("reconfigured", False), ("fresh_decoder", True)):
        seen: dict[str, set] = {}
        index_sets: dict[str, set] = {}
        t0 = time.perf_counter()
        for _ in range(args.repeats):
            for name, path, start, end in files:
                if fresh:
                    reader._local.decoder = None
                times = clip_times(start, end)[0]
                decoder = reader._decoder(path)
                index_sets.setdefault(name, set()).add(tuple(reader.frame_indices(decoder, times)[0]))
                frames = reader.read_frames_at(path, times, start, end, 416).frames
                seen.setdefault(name, set()).add(hashlib.sha256(b"".join(f.image.tobytes() for f in frames)).hexdigest())
        out[label] = {"distinct_frame_sets": {n: len(v) for n, v in seen.items()},
                      "distinct_index_lists": {n: len(v) for n, v in index_sets.items()},
                      "s_per_read": round((time.perf_counter() - t0) / (args.repeats * len(files)), 4)}
        print(label, out[label], flush=True)
    args.out.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
