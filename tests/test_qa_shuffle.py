"""Option shuffling: deterministic per QA, answer follows its option, positions spread evenly."""

from __future__ import annotations

import pandas as pd

from haic_core.haicbench.qa import QA, make_qa_id
from haic_core.haicbench.qa_shuffle import (
    answer_balance,
    answer_balance_by_category,
    answer_position_distribution,
    answer_positions_markdown,
    balance_answer_positions,
    shuffle_options,
    shuffled_order,
    with_balanced_answer_positions,
)


def qa(k: int, category: str = "count", n_options: int = 5, answer_index: int = 0) -> QA:
    question = f"How many jumps {k}?"
    options = tuple(f"option {i} of q{k}" for i in range(n_options))
    return QA(make_qa_id("clip", category, question), "clip", category, question, options, answer_index, "m", "v")


def test_shuffle_keeps_the_correct_option_text():
    for k in range(50):
        original = qa(k, answer_index=k % 5)
        shuffled = shuffle_options(original)
        assert sorted(shuffled.options) == sorted(original.options)
        assert shuffled.options[shuffled.answer_index] == original.options[original.answer_index]


def test_shuffle_is_deterministic_per_qa_id():
    assert shuffle_options(qa(1)) == shuffle_options(qa(1))
    orders = {tuple(shuffled_order(qa(k).qa_id, 5)) for k in range(30)}
    assert len(orders) > 10  # different QAs get different orders


def test_llm_bias_towards_first_option_is_undone():
    shuffled = [shuffle_options(qa(k, answer_index=0)) for k in range(2000)]
    balance = answer_balance([q.answer_index for q in shuffled], 5)
    assert balance.counts[0] < 500 and balance.balanced, balance


def test_unshuffled_bias_fails_the_balance_check():
    balance = answer_balance([0] * 300 + [1] * 100, 4, tolerance=0.05)
    assert balance.counts == (300, 100, 0, 0)
    assert not balance.balanced and abs(balance.max_deviation - 0.5) < 1e-9


def test_distribution_counts_every_position():
    assert answer_position_distribution([0, 2, 2, 3], 4) == (1, 0, 2, 1)


def test_balanced_positions_are_exact_per_category():
    qas = [qa(k, "count", 5, k % 2) for k in range(400)] + [qa(k, "attribute", 4, 0) for k in range(400)]
    balanced = balance_answer_positions(qas)
    by_category = answer_balance_by_category(balanced, tolerance=0.0)
    assert by_category["count"].counts == (80, 80, 80, 80, 80)
    assert by_category["attribute"].counts == (100, 100, 100, 100)
    for before, after in zip(qas, balanced):
        assert after.options[after.answer_index] == before.options[before.answer_index]
    assert balance_answer_positions(qas) == balanced


def test_a_table_gets_the_balanced_positions_and_a_markdown_summary():
    qas = [qa(k, "attribute", 4, 0) for k in range(8)]
    table = pd.DataFrame([q.as_record() for q in qas]).assign(picked_as="anchor")
    placed = with_balanced_answer_positions(table)
    assert sorted(placed["answer_index"]) == [0, 0, 1, 1, 2, 2, 3, 3] and (placed["picked_as"] == "anchor").all()
    assert [QA.from_record(r) for r in placed.to_dict("records")] == balance_answer_positions(qas)
    summary = answer_positions_markdown(balance_answer_positions(qas))
    assert summary.splitlines()[-1] == "| attribute | 8 | 2, 2, 2, 2 | 0.000 |"
    assert answer_positions_markdown([]) == "_(no QA)_"
