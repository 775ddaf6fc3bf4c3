"""The caption corpus (tests/corpus/captions): the paper's format as it really appears (its
openings, paragraph openings, "Subject 2", any tense) kept, broken captions dropped with their
reasons, and the declared subject count kept as a value in the ledger."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from haic_core.haic_train.caption_format import check_caption, declared_subject_count
from haic_cli.checks import caption_check_report

CORPUS = Path(__file__).resolve().parent / "corpus" / "captions"
EXPECTED: dict[str, dict] = json.loads((CORPUS / "expected.json").read_text(encoding="utf-8"))


def caption(name: str) -> str:
    return (CORPUS / f"{name}.txt").read_text(encoding="utf-8")


def test_the_corpus_has_good_and_bad_captions_and_every_paper_shape():
    assert len(EXPECTED) >= 25
    verdicts = [c["verdict"] for c in EXPECTED.values()]
    assert verdicts.count("kept") >= 10 and verdicts.count("dropped") >= 10
    texts = {n: caption(n) for n in EXPECTED}
    for opening in ("There is 1 subject in the video\n", "There are 3 subjects in the video.",
                    "There are two main subjects in the video.", "The main characters are two people.",
                    "The main character is one person."):
        assert any(t.startswith(opening) and EXPECTED[n]["verdict"] == "kept" for n, t in texts.items()), opening
    for paragraph_opening in ("\nThe first subject is", "\nThe first is", "\nThis person is", "\nThe second is a baby"):
        assert any(paragraph_opening in t and EXPECTED[n]["verdict"] == "kept" for n, t in texts.items())
    assert "Subject 2" in texts["refers_to_subject_2"] and "screams loudly" in texts["screams_loudly"]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_caption_gets_its_expected_verdict_and_reasons(name):
    expected = EXPECTED[name]
    report = caption_check_report(caption(name))
    assert report == {k: expected[k] for k in ("verdict", "reasons", "declared_subjects", "paragraphs")}


@pytest.mark.parametrize("name", [n for n, c in sorted(EXPECTED.items()) if c["declared_subjects"] is not None])
def test_the_declared_count_is_the_ledger_threshold_against_the_paragraph_count(name):
    decision = check_caption(caption(name), item_id=name)
    expected = EXPECTED[name]
    assert declared_subject_count(caption(name)) == expected["declared_subjects"]
    if decision.metric == "subject_paragraphs":
        assert (decision.value, decision.threshold) == (expected["paragraphs"], expected["declared_subjects"])
    assert decision.detail["declared_subjects"] == expected["declared_subjects"]
