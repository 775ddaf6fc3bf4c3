"""The pool the HAICBench split is chosen from: every batch's verified QA, the latest version of
each QA, without the clips and source videos of HAICTrain (a benchmark question about a training
clip would leak the answer).

Pure: no I/O, no Dagster.
"""

from __future__ import annotations

from collections.abc import Collection

import pandas as pd

from haic_core.decisions import Decision, dropped


def latest_verified(qa_verified: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """(one row per qa_id, the later batch's when a QA was verified twice; how many rows that dropped)."""
    pool = qa_verified.drop_duplicates("qa_id", keep="last").reset_index(drop=True)
    return pool, len(qa_verified) - len(pool)


def haic_train_ids(haic_train: pd.DataFrame) -> tuple[set[str], set[str]]:
    """(clip ids, video ids) of the HAICTrain rows; empty when there are none."""
    if haic_train.empty:
        return set(), set()
    return set(haic_train["clip_id"].astype(str)), set(haic_train["video_id"].dropna().astype(str))


def without_haic_train(pool: pd.DataFrame, train_clip_ids: Collection[str],
                       train_video_ids: Collection[str]) -> tuple[pd.DataFrame, list[Decision]]:
    """The pool less every QA whose clip or source video is in HAICTrain, and a dropped
    decision for each QA left out."""
    if not train_clip_ids and not train_video_ids:
        return pool, []
    overlap = pool["clip_id"].astype(str).isin(train_clip_ids) | pool["video_id"].astype(str).isin(train_video_ids)
    excluded = [dropped(r.qa_id, "clip or its source video is in HAICTrain", item_kind="qa", parent_id=r.clip_id,
                        detail={"video_id": r.video_id, "category": r.category})
                for r in pool[overlap].itertuples(index=False)]
    return pool[~overlap].reset_index(drop=True), excluded


def without_leaked_content(pool: pd.DataFrame, leaked: pd.DataFrame) -> tuple[pd.DataFrame, list[Decision]]:
    """The pool less every QA whose clip shows the same footage as a HAICTrain clip under another id
    (`leaked`: haicbench_content_leakage's pairs, bench_clip_id, train_clip_id, matched_share, median_bits),
    and a dropped decision per QA left out that names the pair."""
    if leaked.empty or pool.empty:
        return pool, []
    first = leaked.drop_duplicates("bench_clip_id").set_index("bench_clip_id")
    overlap = pool["clip_id"].astype(str).isin(first.index)
    excluded = []
    for r in pool[overlap].itertuples(index=False):
        pair = first.loc[r.clip_id]
        excluded.append(dropped(r.qa_id, f"clip shows the same footage as HAICTrain clip {pair.train_clip_id}",
                                item_kind="qa", parent_id=r.clip_id, metric="matched_share",
                                value=float(pair.matched_share),
                                detail={"train_clip_id": str(pair.train_clip_id), "bench_clip_id": r.clip_id,
                                        "median_bits": float(pair.median_bits), "category": r.category}))
    return pool[~overlap].reset_index(drop=True), excluded
