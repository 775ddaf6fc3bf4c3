"""The HAICBench test split: 412 videos and 2,000 QA, 400 per category (the paper, section 3).

How the split is chosen (deterministic for a seed):
1. `sql/haicbench_category_supply.sql`: the pool must hold each category's quota at all.
2. `sql/haicbench_video_supply.sql`: per video and category, how many verified QA it holds,
   and an md5(seed, video_id) order key.
3. Greedy video choice (here, in numpy: a recursive CTE would be unreadable): repeatedly take
   the video that best fills what the categories still need, each category weighted by
   scarcity (still needed / still available among unchosen videos). Ties - common, since many
   captions have the same question profile - go to the earlier video in seeded order, which is
   what makes different seeds give different splits. Once every quota can be met, the rest of
   the videos are taken in seeded order.
4. `sql/haicbench_select_qa.sql`: exactly `quota` QA per category from the chosen videos, each
   video's seeded-first QA taken first so that every chosen video contributes a question, then
   a video's first question in a category before its second.
5. `sql/haicbench_select_videos.sql`: the chosen videos with their pool supply.
A pool that cannot meet the targets raises `InfeasibleSplitError` saying what is short.

The DuckDB runner registers the given DataFrames as views on an in-memory connection; reading
the `.sql` files (through `haic_core.sql_files.load_sql`) is its only I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import duckdb
import numpy as np
import pandas as pd

from haic_core.decisions import Decision, dropped, kept
from haic_core.haicbench.qa import CATEGORIES
from haic_core.sql_files import load_sql

PAPER_N_VIDEOS = 412
PAPER_N_QA = 2000
PAPER_CATEGORY_QUOTA = 400
REQUIRED_POOL_COLUMNS = ("qa_id", "clip_id", "video_id", "category")


class InfeasibleSplitError(ValueError):
    """The pool cannot supply the split; the message says what is short."""


@dataclass(frozen=True)
class SplitParams:
    n_videos: int = PAPER_N_VIDEOS
    n_qa: int = PAPER_N_QA
    category_quota: Mapping[str, int] = field(
        default_factory=lambda: {category: PAPER_CATEGORY_QUOTA for category in CATEGORIES}
    )
    seed: int | str = 0


@dataclass(frozen=True)
class HaicbenchSplit:
    """videos: video_id, selection_rank, clip_ids, n_pool_qa.
    qa: every pool column of the chosen QA, plus selection_rank and picked_as (anchor/fill)."""

    videos: pd.DataFrame
    qa: pd.DataFrame
    params: SplitParams


def _query(con: duckdb.DuckDBPyConnection, name: str, params: Mapping[str, Any] | None = None) -> pd.DataFrame:
    return con.execute(load_sql(name), dict(params or {})).df()


def select_haicbench_split(pool: pd.DataFrame, params: SplitParams = SplitParams()) -> HaicbenchSplit:
    """Choose the test split from a pool of verified QA (one row per QA; at least the columns
    qa_id, clip_id, video_id, category; other columns are carried through)."""
    missing = [c for c in REQUIRED_POOL_COLUMNS if c not in pool.columns]
    if missing:
        raise ValueError(f"the QA pool lacks columns {missing}")
    if pool["qa_id"].duplicated().any():
        raise ValueError(f"the QA pool repeats qa_ids, e.g. {pool.loc[pool['qa_id'].duplicated(), 'qa_id'].iloc[0]}")
    quota = dict(params.category_quota)
    if sum(quota.values()) != params.n_qa:
        raise ValueError(f"category quotas sum to {sum(quota.values())}, but the split needs {params.n_qa} QA")
    if params.n_qa < params.n_videos:
        raise InfeasibleSplitError(
            f"{params.n_qa} QA cannot give each of {params.n_videos} videos a question"
        )
    seed = str(params.seed)

    con = duckdb.connect()
    try:
        con.register("verified_qa_pool", pool)
        con.register("category_quota", pd.DataFrame({"category": list(quota), "quota": list(quota.values())}))

        supply = _query(con, "haicbench_category_supply")
        short = supply[supply["n_available"] < supply["quota"]]
        if len(short):
            raise InfeasibleSplitError("; ".join(
                f"{r.category}: {r.n_available} available in the pool, {r.quota} needed" for r in short.itertuples()
            ))

        video_supply = _query(con, "haicbench_video_supply", {"seed": seed})
        chosen = choose_videos(video_supply, quota, params.n_videos)

        con.register("chosen_videos", chosen)
        videos = _query(con, "haicbench_select_videos")
        qa = _query(con, "haicbench_select_qa", {"seed": seed})
    finally:
        con.close()

    uncovered = sorted(set(videos["video_id"]) - set(qa["video_id"]))
    if uncovered:
        raise InfeasibleSplitError(
            f"{len(uncovered)} chosen videos contribute no question within the category quotas "
            f"(e.g. {uncovered[:3]}); they cannot count as benchmark videos"
        )
    per_category = qa["category"].value_counts().to_dict()
    wrong = {c: (per_category.get(c, 0), q) for c, q in quota.items() if per_category.get(c, 0) != q}
    if wrong:  # cannot happen when the supply checks pass; guards the SQL against regressions
        raise AssertionError(f"quota pick returned {wrong} (got, needed)")
    return HaicbenchSplit(videos=videos, qa=qa.reset_index(drop=True), params=params)


def choose_videos(video_supply: pd.DataFrame, quota: Mapping[str, int], n_videos: int) -> pd.DataFrame:
    """Greedy, scarcity-weighted choice of `n_videos` videos whose QA can fill every quota.

    `video_supply`: video_id, category, n_qa, video_order_key (from haicbench_video_supply.sql).
    Returns chosen_videos: video_id, selection_rank (1-based)."""
    categories = list(quota)
    matrix_frame = (
        video_supply.pivot_table(index=["video_order_key", "video_id"], columns="category",
                                 values="n_qa", aggfunc="sum", fill_value=0)
        .reindex(columns=categories, fill_value=0)
        .sort_index()  # seeded order: np.argmax's first-maximum rule breaks ties by it
    )
    video_ids = matrix_frame.index.get_level_values("video_id").to_numpy()
    supply = matrix_frame.to_numpy(dtype=float)
    needed = np.array([quota[c] for c in categories], dtype=float)

    if len(video_ids) < n_videos:
        raise InfeasibleSplitError(f"the pool has {len(video_ids)} videos with verified QA, {n_videos} needed")
    # Even the n_videos richest videos in a category may not reach its quota.
    best_possible = np.sort(supply, axis=0)[::-1][:n_videos].sum(axis=0)
    short = [(c, int(b), int(q)) for c, b, q in zip(categories, best_possible, needed) if b < q]
    if short:
        raise InfeasibleSplitError("; ".join(
            f"{n_videos} videos cannot supply {q} {c} questions: only {b}" for c, b, q in short
        ))

    remaining = needed.copy()
    available = supply.sum(axis=0)
    taken = np.zeros(len(video_ids), dtype=bool)
    picks: list[int] = []
    for _ in range(n_videos):
        need = np.maximum(remaining, 0.0)
        scarcity = need / np.maximum(available, 1.0)
        gain = (np.minimum(supply, need) * scarcity).sum(axis=1)
        gain[taken] = -1.0
        pick = int(np.argmax(gain))
        taken[pick] = True
        picks.append(pick)
        remaining -= supply[pick]
        available -= supply[pick]

    if (remaining > 0).any():
        short_now = [(c, int(q - r), int(q)) for c, r, q in zip(categories, remaining, needed) if r > 0]
        raise InfeasibleSplitError("; ".join(
            f"the {n_videos} chosen videos supply only {got} {c} questions, {q} needed "
            "(the greedy choice found no better set)" for c, got, q in short_now
        ))
    return pd.DataFrame({"video_id": video_ids[picks], "selection_rank": np.arange(1, n_videos + 1)})


def split_decisions(pool: pd.DataFrame, split: HaicbenchSplit) -> list[Decision]:
    """One Decision per pool QA (item_kind 'qa') and per pool video (item_kind 'video'):
    in the test split, or why not."""
    chosen_videos = set(split.videos["video_id"])
    chosen_qa = set(split.qa["qa_id"])
    seed = {"seed": str(split.params.seed)}
    decisions: list[Decision] = []
    for row in pool[["qa_id", "clip_id", "video_id", "category"]].itertuples(index=False):
        detail = {"category": row.category, "video_id": row.video_id, **seed}
        if row.qa_id in chosen_qa:
            decisions.append(kept(row.qa_id, "in the HAICBench test split", item_kind="qa",
                                  parent_id=row.clip_id, detail=detail))
        elif row.video_id in chosen_videos:
            decisions.append(dropped(row.qa_id, f"{row.category} quota filled by other questions",
                                     item_kind="qa", parent_id=row.clip_id, detail=detail))
        else:
            decisions.append(dropped(row.qa_id, "video not chosen for the test split",
                                     item_kind="qa", parent_id=row.clip_id, detail=detail))
    for video_id in sorted(set(pool["video_id"])):
        if video_id in chosen_videos:
            decisions.append(kept(video_id, "in the HAICBench test split", item_kind="video", detail=seed))
        else:
            decisions.append(dropped(video_id, "not chosen for the test split", item_kind="video", detail=seed))
    return decisions
