"""Shuffle QA options after generation, and check where the correct answers ended up.

LLMs put the correct option in favourite places (often first or second) even when told not to,
so the paper shuffles options after generation. The shuffle is seeded by the QA's id: the same
QA always gets the same order, whatever else is in the batch and on whichever machine.

Option counts stay as the paper's table gives them: 4 for interaction, action details and
attribute; 5 for action sequence and count. (The paper's benchmark examples show A-D in every
category; we keep the fifth option rather than drop a distractor, and the lmms-eval export
letters such questions A-E.)

Pure: no I/O, no Dagster.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from dataclasses import dataclass, replace
from typing import Iterable, Sequence

import pandas as pd

from haic_core.haicbench.qa import QA


def _rng(qa_id: str, salt: str = "") -> random.Random:
    seed = int.from_bytes(hashlib.sha256(f"{salt}{qa_id}".encode("utf-8")).digest()[:8], "big")
    return random.Random(seed)


def shuffled_order(qa_id: str, n_options: int) -> list[int]:
    """The permutation for this QA: new position i shows old option order[i]."""
    order = list(range(n_options))
    _rng(qa_id).shuffle(order)
    return order


def shuffle_options(qa: QA) -> QA:
    """The same QA with its options in the order seeded by its id, and the answer moved along."""
    order = shuffled_order(qa.qa_id, len(qa.options))
    options = tuple(qa.options[old] for old in order)
    return replace(qa, options=options, answer_index=order.index(qa.answer_index))


def place_answer(qa: QA, answer_position: int) -> QA:
    """The QA with its correct option at `answer_position` and the distractors in an order
    seeded by its id. Used by `balance_answer_positions` to make the spread exact."""
    if not 0 <= answer_position < len(qa.options):
        raise ValueError(f"answer position {answer_position} outside {len(qa.options)} options")
    distractors = [o for i, o in enumerate(qa.options) if i != qa.answer_index]
    _rng(qa.qa_id, salt="distractors:").shuffle(distractors)
    options = distractors[:answer_position] + [qa.options[qa.answer_index]] + distractors[answer_position:]
    return replace(qa, options=tuple(options), answer_index=answer_position)


def balance_answer_positions(qas: Sequence[QA]) -> list[QA]:
    """Exactly even answer positions within each (category, option count) group (counts differ
    by at most one), still deterministic: QAs are ordered by sha256 of their id and assigned
    positions round-robin. Use this on a final split when a seeded shuffle's random spread
    (a few percent off uniform for 400 questions) is not even enough."""
    groups: dict[tuple[str, int], list[QA]] = {}
    for qa in qas:
        groups.setdefault((qa.category, len(qa.options)), []).append(qa)
    placed: dict[str, QA] = {}
    for (_, n_options), members in groups.items():
        ordered = sorted(members, key=lambda qa: hashlib.sha256(qa.qa_id.encode("utf-8")).hexdigest())
        for rank, qa in enumerate(ordered):
            placed[qa.qa_id] = place_answer(qa, rank % n_options)
    return [placed[qa.qa_id] for qa in qas]


def with_balanced_answer_positions(table: pd.DataFrame) -> pd.DataFrame:
    """A QA table (one row per QA) with its options and answers placed by
    `balance_answer_positions`."""
    placed = {qa.qa_id: qa for qa in balance_answer_positions([QA.from_record(r) for r in table.to_dict("records")])}
    return table.assign(options=[list(placed[q].options) for q in table["qa_id"]],
                        answer_index=[placed[q].answer_index for q in table["qa_id"]])


@dataclass(frozen=True)
class AnswerBalance:
    """Where the correct answers sit, against a uniform spread."""

    n_questions: int
    n_options: int
    counts: tuple[int, ...]
    shares: tuple[float, ...]
    max_deviation: float  # largest |share - 1/n_options| over positions
    tolerance: float

    @property
    def balanced(self) -> bool:
        return self.max_deviation <= self.tolerance


def answer_position_distribution(answer_indices: Iterable[int], n_options: int) -> tuple[int, ...]:
    """How many answers sit at each position 0..n_options-1."""
    counts = Counter(answer_indices)
    outside = [i for i in counts if not 0 <= i < n_options]
    if outside:
        raise ValueError(f"answer positions {sorted(outside)} outside {n_options} options")
    return tuple(counts.get(i, 0) for i in range(n_options))


def answer_balance(answer_indices: Iterable[int], n_options: int, tolerance: float = 0.05) -> AnswerBalance:
    """Distribution plus the check: balanced when no position's share is more than
    `tolerance` (absolute, e.g. 0.05 = 5 points) away from 1/n_options."""
    counts = answer_position_distribution(answer_indices, n_options)
    total = sum(counts)
    shares = tuple(c / total for c in counts) if total else tuple(0.0 for _ in counts)
    max_deviation = max(abs(s - 1 / n_options) for s in shares) if total else 0.0
    return AnswerBalance(total, n_options, counts, shares, max_deviation, tolerance)


def answer_balance_by_category(qas: Iterable[QA], tolerance: float = 0.05) -> dict[str, AnswerBalance]:
    """`answer_balance` per category (categories have different option counts)."""
    by_category: dict[str, tuple[int, list[int]]] = {}
    for qa in qas:
        n_options, indices = by_category.setdefault(qa.category, (len(qa.options), []))
        if n_options != len(qa.options):
            raise ValueError(f"category {qa.category} mixes {n_options} and {len(qa.options)} options")
        indices.append(qa.answer_index)
    return {
        category: answer_balance(indices, n_options, tolerance)
        for category, (n_options, indices) in sorted(by_category.items())
    }


def answer_positions_markdown(qas: Sequence[QA]) -> str:
    """Where the correct answer sits per category, as a markdown table for the UI."""
    if not qas:
        return "_(no QA)_"
    lines = ["| category | questions | answers at A, B, C, ... | max deviation from even |", "|---|---|---|---|"]
    for category, balance in answer_balance_by_category(qas).items():
        lines.append(f"| {category} | {balance.n_questions} | {', '.join(map(str, balance.counts))} "
                     f"| {balance.max_deviation:.3f} |")
    return "\n".join(lines)
