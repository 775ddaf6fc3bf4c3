"""SYNTHETIC verified-QA pools for tests and benchmarks of the HAICBench split. Not data.

Shaped like the paper's pool (1,140 video-caption pairs, 7,548 QA) with the skew the
generation rules produce: interaction only for multi-subject captions, two action-details and
two action-sequence questions per caption (sometimes one, after review drops), up to three
count questions, one attribute question. Deterministic for a seed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from haic_core.haicbench.qa import CATEGORIES, CATEGORY_RULES, make_qa_id

PAPER_N_VIDEOS = 1140
PAPER_N_QA = 7548

_COLOURS = ("red", "blue", "green", "black", "white", "yellow", "grey", "orange")
_ACTIONS = ("waves", "jumps", "claps", "turns around", "kicks the ball", "nods", "points ahead", "crouches")


def _question(category: str, video: int, k: int, rng: np.random.Generator) -> tuple[str, list[str], int]:
    colour = _COLOURS[int(rng.integers(len(_COLOURS)))]
    action = _ACTIONS[int(rng.integers(len(_ACTIONS)))]
    n_options = CATEGORY_RULES[category].n_options
    person = f"the person in the {colour} shirt"
    if category == "count":
        question = f"How many times does {person} {action.split()[0].rstrip('s')} (synthetic v{video} q{k})?"
        options = [str(n) for n in range(1, n_options + 1)]
    elif category == "action_sequence":
        question = f"What does {person} do immediately after it {action} (synthetic v{video} q{k})?"
        options = [f"{a} once" for a in _ACTIONS[:n_options]]
    elif category == "interaction":
        question = f"How does {person} respond to the other person (synthetic v{video} q{k})?"
        options = ["hands over a cup", "shakes hands", "pushes them away", "ignores them"]
    elif category == "attribute":
        question = f"What is {person} wearing on the head (synthetic v{video} q{k})?"
        options = ["a cap", "a helmet", "a scarf", "nothing"]
    else:
        question = f"Which hand does {person} use when it {action} (synthetic v{video} q{k})?"
        options = ["the left hand", "the right hand", "both hands", "neither hand"]
    return question, options, int(rng.integers(n_options))


def synthetic_verified_qa_pool(
    seed: int = 0,
    n_videos: int = PAPER_N_VIDEOS,
    n_qa: int = PAPER_N_QA,
    multi_subject_share: float = 0.6,
) -> pd.DataFrame:
    """SYNTHETIC pool: one row per verified QA with qa_id, clip_id, video_id, category,
    question, options, answer_index, subject_count. Exactly `n_qa` rows over `n_videos` videos
    (count questions absorb the difference, 0-3 per caption)."""
    rng = np.random.default_rng(seed)
    multi = rng.random(n_videos) < multi_subject_share
    per_category = {
        # A few multi-subject captions lose their interaction question in review.
        "interaction": np.where(multi & (rng.random(n_videos) > 0.04), 1, 0),
        "action_details": np.where(rng.random(n_videos) < 0.06, 1, 2),
        "action_sequence": np.where(rng.random(n_videos) < 0.08, 1, 2),
        "count": rng.choice([0, 1, 2, 3], size=n_videos, p=[0.3, 0.4, 0.2, 0.1]),
        "attribute": np.where(rng.random(n_videos) < 0.03, 0, 1),
    }
    counts = per_category["count"]
    others = sum(per_category[c] for c in CATEGORIES if c != "count")
    excess = int(others.sum() + counts.sum() - n_qa)
    # Move the total to exactly n_qa by adding or removing count questions, one at a time.
    order = rng.permutation(n_videos)
    step = -1 if excess > 0 else 1
    i = 0
    while excess != 0:
        v = order[i % n_videos]
        if 0 <= counts[v] + step <= 3:
            counts[v] += step
            excess += step
        i += 1
        if i > 10 * n_videos:
            raise ValueError(f"{n_videos} synthetic videos cannot hold {n_qa} QA under the per-caption limits")

    rows = []
    for v in range(n_videos):
        video_id = f"synth_video_{v:05d}"
        clip_id = f"{video_id}_clip00"
        for category in CATEGORIES:
            for k in range(int(per_category[category][v])):
                question, options, answer_index = _question(category, v, k, rng)
                rows.append({
                    "qa_id": make_qa_id(clip_id, category, question),
                    "clip_id": clip_id,
                    "video_id": video_id,
                    "category": category,
                    "question": question,
                    "options": options,
                    "answer_index": answer_index,
                    "subject_count": 2 if multi[v] else 1,
                })
    return pd.DataFrame(rows)
