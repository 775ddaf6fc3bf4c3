"""`haic check-qa` and `haic check-caption` as subprocesses, on the two corpora: the same results
as the stages' code (tests/test_qa_corpus.py and tests/test_caption_corpus.py read them in-process
and through the LLM path)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from haic_core.haicbench.qa import CATEGORIES
from tests.test_caption_corpus import CORPUS as CAPTIONS
from tests.test_caption_corpus import EXPECTED as CAPTION_EXPECTED
from tests.test_qa_corpus import CORPUS as ANSWERS
from tests.test_qa_corpus import EXPECTED as QA_EXPECTED
from tests.test_qa_corpus import comparable, expected_report
from tests.timing import limit

REPO = Path(__file__).resolve().parents[1]


def haic(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HAIC_HOME": str(home)}
    env.pop("HAIC_SETTINGS", None)
    return subprocess.run([sys.executable, "-m", "haic_cli", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=limit(120))


def json_lines(out: str) -> dict[str, dict]:
    return {Path(r["file"]).stem: r for r in map(json.loads, out.splitlines())}


@pytest.mark.parametrize("category", CATEGORIES)
def test_check_qa_prints_the_corpus_results_for_a_category(tmp_path, category):
    names = sorted(n for n, c in QA_EXPECTED.items() if c["category"] == category and c["subjects"] != 1)
    files = [str(ANSWERS / f"{n}.txt") for n in names]
    done = haic(tmp_path, "check-qa", "--category", category, "--json", *files)
    reports = json_lines(done.stdout)
    assert sorted(reports) == names, done.stderr
    for name in names:
        assert comparable(reports[name]) == expected_report(QA_EXPECTED[name]), name
    rejected = any(QA_EXPECTED[n]["verdict"] == "rejected" for n in names)
    assert done.returncode == (1 if rejected else 0)


def test_check_qa_one_file_its_json_and_exit_codes(tmp_path):
    single = sorted(n for n, c in QA_EXPECTED.items() if c["subjects"] == 1)
    done = haic(tmp_path, "check-qa", "--category", "interaction", "--subjects", "1", "--json",
                *[str(ANSWERS / f"{n}.txt") for n in single])
    reports = json_lines(done.stdout)
    assert sorted(reports) == single, done.stderr
    for name in single:
        assert comparable(reports[name]) == expected_report(QA_EXPECTED[name]), name
    assert done.returncode == 1  # the question written for a single-subject caption is rejected
    sentinel = haic(tmp_path, "check-qa", "--category", "interaction", "--json",
                    str(ANSWERS / "interaction__sentinel_period.txt"))
    assert sentinel.returncode == 0  # zero QA with a recorded reason is parsed
    assert json.loads(sentinel.stdout) == {"qas": [], "verdict": "dropped", "reason": "no interaction: single subject",
                                           "rejections": [{"question": "", "reason": "no interaction: single subject"}]}
    kept = haic(tmp_path, "check-qa", "--category", "count", str(ANSWERS / "count__paper_answer_prefix_list.txt"))
    assert kept.returncode == 0 and "KEPT" in kept.stdout


def test_check_qa_reads_the_qa_pairs_strictness_from_settings(tmp_path):
    (tmp_path / "settings.yaml").write_text("qa_pairs:\n  before_after: reject\n")
    done = haic(tmp_path, "check-qa", "--category", "action_details", "--json",
                str(ANSWERS / "action_details__paper_after_question.txt"))
    report = json.loads(done.stdout)
    assert done.returncode == 1 and report["verdict"] == "rejected"
    assert report["reason"] == "before/after wording in action details: 'after' in question"


def test_check_caption_prints_the_corpus_results(tmp_path):
    names = sorted(CAPTION_EXPECTED)
    done = haic(tmp_path, "check-caption", "--json", *[str(CAPTIONS / f"{n}.txt") for n in names])
    reports = json_lines(done.stdout)
    assert sorted(reports) == names, done.stderr
    for name in names:
        expected = CAPTION_EXPECTED[name]
        assert {k: v for k, v in reports[name].items() if k != "file"} == {
            k: expected[k] for k in ("verdict", "reasons", "declared_subjects", "paragraphs")}, name
    assert done.returncode == 1  # some are dropped
    one = haic(tmp_path, "check-caption", "--json", str(CAPTIONS / "main_characters_two_people.txt"))
    assert one.returncode == 0 and json.loads(one.stdout) == {"verdict": "kept", "reasons": [], "declared_subjects": 2,
                                                               "paragraphs": 2}
    bad = haic(tmp_path, "check-caption", str(CAPTIONS / "music_plays.txt"))
    assert bad.returncode == 1 and "mentions audio: 'music'" in bad.stdout
