"""Leakage by content: a HAICBench clip whose pictures are also in HAICTrain, under another id.

Ids and source videos are already kept apart (`haic_core.haicbench.split_pool`); the same footage
can still arrive twice (a re-upload, another source, a re-cut). Each clip is summarised by the
64-bit difference hash of a few uniformly sampled frames; two clips are near-duplicates when most
frames of the benchmark clip have a frame in the training clip within a few bits. A difference
hash survives re-encoding, rescaling and small colour changes, not crops or mirroring.

Pure: frames come in as arrays.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

HASH_SIDE = 8  # 8 x 8 comparisons: a 64-bit hash
DEFAULT_MAX_BITS = 10  # of 64: re-encodes and rescales differ by a few bits, other scenes by ~32
DEFAULT_MIN_SHARE = 0.6  # of the benchmark clip's frames matched


def difference_hash(image: np.ndarray, side: int = HASH_SIDE) -> int:
    """Difference hash of an RGB or grey image: the grey image averaged down to side x (side+1)
    blocks, one bit per horizontal neighbour pair (left brighter than right)."""
    grey = image.astype(np.float64)
    if grey.ndim == 3:
        grey = grey @ np.array([0.299, 0.587, 0.114])
    rows = np.array_split(np.arange(grey.shape[0]), side)
    cols = np.array_split(np.arange(grey.shape[1]), side + 1)
    blocks = np.array([[grey[np.ix_(r, c)].mean() for c in cols] for r in rows])
    bits = (blocks[:, :-1] > blocks[:, 1:]).flatten()
    return int(sum(1 << i for i, bit in enumerate(bits) if bit))


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


@dataclass(frozen=True)
class LeakedPair:
    bench_clip_id: str
    train_clip_id: str
    matched_share: float  # share of the benchmark clip's frames with a near-identical training frame
    median_bits: float  # median over the benchmark frames of the closest training frame's distance
    method: str = "frame_dhash"  # or "source_sha256": both clips were cut from byte-identical source files


def compare(bench: Sequence[int], train: Sequence[int], max_bits: int = DEFAULT_MAX_BITS) -> tuple[float, float]:
    """(matched share, median closest distance) of a benchmark clip's frame hashes against a training clip's."""
    closest = [min(hamming(b, t) for t in train) for b in bench]
    return sum(d <= max_bits for d in closest) / len(closest), float(np.median(closest))


def leaked_pairs(bench: Mapping[str, Sequence[int]], train: Mapping[str, Sequence[int]],
                 max_bits: int = DEFAULT_MAX_BITS, min_share: float = DEFAULT_MIN_SHARE) -> list[LeakedPair]:
    """Every (benchmark clip, training clip) pair that shows the same footage, most similar first."""
    pairs = []
    for bench_id, bench_hashes in bench.items():
        if not bench_hashes:
            continue
        for train_id, train_hashes in train.items():
            if not train_hashes:
                continue
            share, median = compare(bench_hashes, train_hashes, max_bits)
            if share >= min_share:
                pairs.append(LeakedPair(bench_id, train_id, share, median))
    return sorted(pairs, key=lambda p: (-p.matched_share, p.median_bits, p.bench_clip_id, p.train_clip_id))


def same_source_file(bench: Mapping[str, str | None], train: Mapping[str, str | None]) -> list[LeakedPair]:
    """Every (benchmark clip, training clip) pair cut from byte-identical source videos (clip id -> the
    sha256 of its source video, as the videos stage computed it): the same upload under two ids."""
    by_hash: dict[str, list[str]] = {}
    for clip_id, digest in train.items():
        if digest:
            by_hash.setdefault(digest, []).append(clip_id)
    return [LeakedPair(bench_id, train_id, 1.0, 0.0, "source_sha256")
            for bench_id, digest in sorted(bench.items()) if digest
            for train_id in sorted(by_hash.get(digest, []))]
