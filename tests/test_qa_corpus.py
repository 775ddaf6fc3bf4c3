"""The QA answer corpus (tests/corpus/qa_answers): raw answers in every shape the paper prints and
models write (GPT-4o, Gemini, open models), each with its expected normalized result; read
directly, and through qa_pairs' LLM path with the real SDK clients against local servers."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from haic_core.haicbench.qa import CATEGORIES, CATEGORY_RULES
from haic_core.haicbench.qa_generation import qa_pairs_table
from haic_assets.haicbench.qa_pairs import QAPairsConfig, _llm_answers
from haic_cli.checks import qa_check_report
from haic_resources.llm.gemini import GeminiClient
from haic_resources.llm.openai_compatible import OpenAIClient
from tests.llm_servers import FakeGeminiServer, FakeOpenAIServer, client_options, prompt_text_of

CORPUS = Path(__file__).resolve().parent / "corpus" / "qa_answers"
EXPECTED: dict[str, dict] = json.loads((CORPUS / "expected.json").read_text(encoding="utf-8"))


def raw(name: str) -> str:
    return (CORPUS / f"{name}.txt").read_text(encoding="utf-8")


def expected_report(case: dict) -> dict:
    """What check-qa must print for a case (the corpus states QAs, verdict, reasons)."""
    rejections = case["rejections"] if case["verdict"] != "dropped" else [case["reason"]]
    return {"qas": case["qas"], "verdict": case["verdict"], "rejections": rejections}


def comparable(report: dict) -> dict:
    return {"qas": report["qas"], "verdict": report["verdict"],
            "rejections": [r["reason"] for r in report["rejections"]]}


def test_the_corpus_covers_every_shape_category_and_style():
    assert len(EXPECTED) >= 60
    by_category = pd.Series([c["category"] for c in EXPECTED.values()]).value_counts()
    assert set(by_category.index) == set(CATEGORIES) and by_category.min() >= 8
    assert {c["style"] for c in EXPECTED.values()} == {"gpt-4o", "gemini", "open-model"}
    shapes = {s for c in EXPECTED.values() for s in c["shape"]}
    for shape in ("answer: prefix", "two lists, comma", "one object", "list", "fence", "fence in fence",
                  "opt keys", "options list", "choices list", "candidates", "A..E keys", "single quotes",
                  "trailing commas", "smart quotes", "comment", "block comment", "number", "letter",
                  "letter form", "answer text", "sentinel", "17-word option", "After ... question"):
        assert shape in shapes, shape
    sentinels = [n for n, c in EXPECTED.items() if "sentinel" in c["shape"]]
    assert len(sentinels) >= 4 and all(EXPECTED[n]["verdict"] == "dropped" for n in sentinels)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_raw_answer_reads_to_its_expected_result(name):
    case = EXPECTED[name]
    report = qa_check_report(raw(name), case["category"], subject_count=case["subjects"])
    assert comparable(report) == expected_report(case)
    for qa in report["qas"]:
        assert len(qa["options"]) == CATEGORY_RULES[case["category"]].n_options
        assert qa["options"][qa["answer_index"]] == qa["answer_text"]


def test_the_papers_rule_breaks_are_flags_by_default_and_rejections_when_set():
    compound = raw("interaction__paper_17_word_compound_option")
    (qa,) = qa_check_report(compound, "interaction", subject_count=2)["qas"]
    assert qa["flags"] == ["option_words"]
    strict = QAPairsConfig(option_words="reject", before_after="reject").rules()
    refused = qa_check_report(compound, "interaction", subject_count=2, rules=strict)
    assert refused["verdict"] == "rejected"
    assert refused["rejections"][0]["reason"] == "option over 15 words: option 3 has 17 words"
    after = qa_check_report(raw("action_details__paper_after_question"), "action_details", rules=strict)
    assert after["rejections"][0]["reason"] == "before/after wording in action details: 'after' in question"


# ---- the LLM path: qa_pairs' own asking code, real SDK clients, local servers -------------------------------


def corpus_captions() -> pd.DataFrame:
    """One 'caption' per corpus case; its text names the case so the server can answer with it."""
    names = sorted(EXPECTED)
    return pd.DataFrame({"clip_id": names, "video_id": [f"v_{n}" for n in names],
                         "caption": [f"CORPUS CASE <<{n}>>" for n in names],
                         "subject_count": [EXPECTED[n]["subjects"] for n in names]}).astype({"subject_count": "Int64"})


def corpus_reply(body) -> str:
    """The test's 'LLM' answers each prompt with the raw answer of the case its caption names."""
    return raw(prompt_text_of(body).split("CORPUS CASE <<")[1].split(">>")[0])


def stage_with(client) -> SimpleNamespace:
    """What `_llm_answers` uses of a StageContext: the LLM resource, a log, and tables in which no
    batch job of this partition is recorded (so every call is asked online)."""
    llm = SimpleNamespace(client=lambda: client, provider=client.provider, model_name=client.model, concurrency=4)
    no_batches = SimpleNamespace(tables=lambda: SimpleNamespace(read=lambda table, partition: None))
    return SimpleNamespace(llm=llm, log=logging.getLogger("test_qa_corpus"), storage=no_batches, stage="qa_pairs",
                           partition_key="corpus")


def through_the_llm_path(client) -> tuple[pd.DataFrame, list, dict]:
    captions = corpus_captions()
    asked = [(n, EXPECTED[n]["category"]) for n in captions["clip_id"]]
    config = QAPairsConfig()
    answers, errors, metadata = _llm_answers(stage_with(client), config, captions, asked)
    assert errors == []
    table, decisions = qa_pairs_table(answers, captions, "llm", config.rules())
    return table, decisions, metadata


def report_of_table(name: str, table: pd.DataFrame, decisions: list) -> dict:
    """The qa_pairs rows and decisions of one case, in check-qa's terms (options back in the
    generated order, so they compare with what the raw answer says)."""
    qas = []
    for row in table[table["clip_id"] == name].itertuples(index=False):
        assert row.options[row.answer_index] == row.answer_text  # the correct text followed its option
        generated = next(p for p in EXPECTED[name]["qas"] if p["question"] == row.question)["options"]
        assert sorted(row.options) == sorted(generated)
        qas.append({"question": row.question, "options": generated, "answer_index": row.generated_answer_index,
                    "answer_text": row.answer_text, "flags": list(row.flags)})
    dropped = [d.reason for d in decisions if d.parent_id == name and d.verdict == "dropped"]
    verdict = "kept" if qas else ("dropped" if len(dropped) == 1 and dropped[0].startswith("no ") else "rejected")
    return {"qas": qas, "verdict": verdict, "rejections": dropped}


@pytest.mark.parametrize("server_class, client_class", [(FakeGeminiServer, GeminiClient), (FakeOpenAIServer, OpenAIClient)],
                         ids=["gemini", "openai"])
def test_the_llm_path_gives_the_corpus_results_and_a_rerun_sends_nothing(tmp_path, server_class, client_class):
    with server_class(corpus_reply) as server:
        base_url = server.base_url if server_class is FakeGeminiServer else f"{server.base_url}/v1"

        def client():
            return client_class(base_url=base_url, model="test-model", **client_options("k-test", tmp_path / "cache"))

        table, decisions, metadata = through_the_llm_path(client())
        assert server.total_requests == len(EXPECTED) and metadata["requests_sent"] == len(EXPECTED)
        if server_class is FakeOpenAIServer:  # the answer as written: no JSON mode forcing an object
            assert all("response_format" not in body for body in server.bodies)
        for name in EXPECTED:
            assert report_of_table(name, table, decisions) == expected_report(EXPECTED[name]), name
        server.reset_counts()
        again, _, metadata = through_the_llm_path(client())
        assert server.total_requests == 0 and metadata["requests_sent"] == 0
        assert metadata["cache_hits"] == len(EXPECTED)
    assert again.drop(columns=["cached"]).equals(table.drop(columns=["cached"]))
