"""The HAICBench test split: 412 videos, 2,000 QA, 400 per category, deterministic per seed."""

from __future__ import annotations

import pandas as pd
import pytest

from haic_core.haicbench.split import InfeasibleSplitError, SplitParams, select_haicbench_split, split_decisions
from haic_core.haicbench.qa import CATEGORIES
from haic_core.haicbench.split_pool import haic_train_ids, latest_verified, without_haic_train
from tests.qa_pool_synth import synthetic_verified_qa_pool


@pytest.fixture(scope="module")
def pool() -> pd.DataFrame:
    return synthetic_verified_qa_pool(seed=0)


@pytest.fixture(scope="module")
def split(pool):
    return select_haicbench_split(pool, SplitParams(seed=0))


def test_synthetic_pool_has_the_papers_size(pool):
    assert len(pool) == 7548 and pool["video_id"].nunique() == 1140
    assert pool.groupby("video_id").size().max() <= 9
    # Interaction exists only for multi-subject captions: the scarce category.
    assert pool[pool["category"] == "interaction"]["subject_count"].eq(2).all()


def test_split_has_412_videos_and_2000_qa_evenly_across_categories(split):
    assert len(split.qa) == 2000 and split.qa["qa_id"].is_unique
    assert split.qa["category"].value_counts().to_dict() == {c: 400 for c in CATEGORIES}
    assert len(split.videos) == 412
    assert set(split.qa["video_id"]) == set(split.videos["video_id"])  # every video contributes


def test_questions_come_only_from_chosen_videos_and_from_the_pool(pool, split):
    merged = split.qa.merge(pool[["qa_id", "video_id", "category"]], on="qa_id", suffixes=("", "_pool"))
    assert len(merged) == 2000
    assert (merged["video_id"] == merged["video_id_pool"]).all() and (merged["category"] == merged["category_pool"]).all()


def test_same_seed_same_split_other_seed_other_split(pool, split):
    again = select_haicbench_split(pool, SplitParams(seed=0))
    assert list(again.qa["qa_id"]) == list(split.qa["qa_id"])
    assert list(again.videos["video_id"]) == list(split.videos["video_id"])
    other = select_haicbench_split(pool, SplitParams(seed=1))
    assert set(other.qa["qa_id"]) != set(split.qa["qa_id"])
    assert set(other.videos["video_id"]) != set(split.videos["video_id"])


def test_decisions_cover_every_pool_qa_and_video(pool, split):
    decisions = split_decisions(pool, split)
    qa_kept = [d for d in decisions if d.item_kind == "qa" and d.verdict == "kept"]
    video_kept = [d for d in decisions if d.item_kind == "video" and d.verdict == "kept"]
    assert len(qa_kept) == 2000 and len(video_kept) == 412
    assert len(decisions) == len(pool) + pool["video_id"].nunique()
    dropped_reasons = {d.reason for d in decisions if d.verdict == "dropped" and d.item_kind == "qa"}
    # Chosen videos hold one interaction question at most, and all of them are needed.
    assert dropped_reasons == {"video not chosen for the test split",
                               *(f"{c} quota filled by other questions" for c in CATEGORIES if c != "interaction")}


def test_pool_short_of_a_category_fails_naming_it(pool):
    kept_count = pool[pool["category"] == "count"].head(310)
    thin = pd.concat([pool[pool["category"] != "count"], kept_count])
    with pytest.raises(InfeasibleSplitError, match="^count: 310 available in the pool, 400 needed$"):
        select_haicbench_split(thin)


def test_too_few_videos_for_a_quota_fail_naming_the_shortfall(pool):
    # 100 videos hold at most 1 interaction, 2 action, 3 count and 1 attribute questions each.
    with pytest.raises(InfeasibleSplitError) as failure:
        select_haicbench_split(pool, SplitParams(n_videos=100))
    assert str(failure.value).split("; ") == [
        "100 videos cannot supply 400 interaction questions: only 100",
        "100 videos cannot supply 400 action_details questions: only 200",
        "100 videos cannot supply 400 action_sequence questions: only 200",
        "100 videos cannot supply 400 count questions: only 300",
        "100 videos cannot supply 400 attribute questions: only 100",
    ]


def test_categories_that_no_412_videos_can_serve_together_fail(pool):
    # Interaction moves to 412 videos of its own; the other categories stay elsewhere. Each
    # category alone can be met by 412 videos, but not all five by the same 412.
    interaction = pool[pool["category"] == "interaction"].head(412)
    solo = interaction.assign(video_id=[f"solo_{i:03d}" for i in range(412)],
                              clip_id=[f"solo_{i:03d}_clip00" for i in range(412)])
    split_apart = pd.concat([pool[pool["category"] != "interaction"], solo])
    with pytest.raises(InfeasibleSplitError, match=r"^the 412 chosen videos supply only \d+ \w+ questions, 400 needed"):
        select_haicbench_split(split_apart)


def test_pool_with_too_few_videos_fails(pool):
    small = pool[pool["video_id"].isin(sorted(pool["video_id"].unique())[:400])]
    params = SplitParams(category_quota={c: 100 for c in CATEGORIES}, n_qa=500)
    with pytest.raises(InfeasibleSplitError, match="^the pool has 400 videos with verified QA, 412 needed$"):
        select_haicbench_split(small, params)


def test_quotas_must_add_up_to_the_qa_total(pool):
    with pytest.raises(ValueError, match="quotas sum to 2000, but the split needs 1999 QA"):
        select_haicbench_split(pool, SplitParams(n_qa=1999))


def test_smaller_custom_split(pool):
    params = SplitParams(n_videos=50, n_qa=250, category_quota={c: 50 for c in CATEGORIES}, seed="demo")
    small = select_haicbench_split(pool, params)
    assert len(small.videos) == 50 and small.qa["category"].value_counts().eq(50).all()
    assert set(small.qa["video_id"]) == set(small.videos["video_id"])


def test_the_pool_keeps_each_qa_once_and_leaves_out_haic_train(pool):
    twice = pd.concat([pool.head(3), pool.head(3).assign(batch="later")])
    latest, dropped_rows = latest_verified(twice)
    assert dropped_rows == 3 and list(latest["batch"]) == ["later"] * 3
    train = pd.DataFrame({"clip_id": [pool["clip_id"].iloc[0]], "video_id": [pool["video_id"].iloc[-1]]})
    clips, videos = haic_train_ids(train)
    assert haic_train_ids(pd.DataFrame()) == (set(), set())
    kept_pool, excluded = without_haic_train(pool, clips, videos)
    shared = pool["clip_id"].isin(clips) | pool["video_id"].isin(videos)
    assert len(kept_pool) == len(pool) - shared.sum() == len(pool) - len(excluded)
    assert {d.reason for d in excluded} == {"clip or its source video is in HAICTrain"}
    unchanged, none = without_haic_train(pool, set(), set())
    assert unchanged is pool and none == []
