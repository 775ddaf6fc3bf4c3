"""Disk used per 1,000 source videos, before and after #17 item 6 (sources read in place, remote
ones staged in a bounded cache and released after the decode steps).

Synthetic small videos (PyAV, H.264) stand in for WebVid's. Measured in one run:
- local/mounted sources: bytes the media store holds after `fetch_media` of every video — the
  "before" figure is the copy every source used to get (the bytes of the sources themselves);
- remote sources (an HTTP server on 127.0.0.1): bytes the cache holds after every video of a
  partition was staged, mirrored (the old behaviour: kept for good) versus released at the end of
  the decode steps, and the peak with a cache bound of 10 % of the partition.

    .venv/bin/python bench/bench_media_disk.py [--videos 1000]
Writes bench/results/media_disk.json.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import av
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.measure import write_result  # noqa: E402
from haic_resources.video import media_cache  # noqa: E402
from haic_resources.video.fetch_policy import FetchPolicy  # noqa: E402
from haic_resources.video.media_fetch import fetch_media  # noqa: E402


def make_video(path: Path, seed: int, seconds: float = 2.0) -> None:
    rng = np.random.default_rng(seed)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        base = rng.integers(0, 255, (64, 96, 3), dtype=np.uint8)
        for i in range(int(seconds * 10)):
            frame = np.roll(base, i, axis=1)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def tree_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) if root.exists() else 0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--videos", type=int, default=1000)
    args = parser.parse_args()
    n = args.videos
    work = Path(tempfile.mkdtemp(prefix="bench_media_disk_"))
    try:
        sources = work / "mounted"
        sources.mkdir()
        for i in range(n):
            make_video(sources / f"v{i:05d}.mp4", i)
        source_bytes = tree_bytes(sources)

        store = work / "home_local" / "media"
        start = time.perf_counter()
        for i in range(n):
            fetch_media(str(sources / f"v{i:05d}.mp4"), store, allowed_roots=[sources])
        local_s = time.perf_counter() - start
        in_place_bytes = tree_bytes(store)

        handler = functools.partial(_QuietHandler, directory=str(sources))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{server.server_address[1]}"
        policy = FetchPolicy(open_networks=("127.0.0.1/32",))
        remote_store = work / "home_remote" / "media"
        bound = max(1, source_bytes // 10)
        peak = 0
        for i in range(n):
            fetch_media(f"{base}/v{i:05d}.mp4", remote_store, policy=policy, cache_max_bytes=bound)
            peak = max(peak, media_cache.cached_bytes(remote_store))
        bounded_bytes = media_cache.cached_bytes(remote_store)
        mirror_store = work / "home_mirror" / "media"
        for i in range(n):
            fetch_media(f"{base}/v{i:05d}.mp4", mirror_store, policy=policy)
        mirrored_bytes = tree_bytes(mirror_store)
        for path in list(media_cache.cache_dir(mirror_store).iterdir()):  # what the last decode step does
            if not path.name.endswith(".json"):
                media_cache.release(path)
        released_bytes = tree_bytes(mirror_store)
        server.shutdown()
        per_k = 1000 / n
        result = {
            "videos": n, "source_bytes": source_bytes,
            "local_before_bytes_per_1000": round(source_bytes * per_k),
            "local_after_bytes_per_1000": round(in_place_bytes * per_k),
            "local_fetch_s_per_1000": round(local_s * per_k, 2),
            "remote_before_mirrored_bytes_per_1000": round(mirrored_bytes * per_k),
            "remote_after_released_bytes_per_1000": round(released_bytes * per_k),
            "remote_cache_bound_bytes": bound, "remote_cache_peak_bytes": peak,
            "remote_cache_end_bytes": bounded_bytes,
        }
        write_result("media_disk", result)
        print(json.dumps(result, indent=2))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
