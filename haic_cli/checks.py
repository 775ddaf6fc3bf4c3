"""`haic check-qa` and `haic check-caption`: one raw text read exactly as the stages read it.

    haic check-qa --category count answer.txt [--subjects N] [--json]
    haic check-caption caption.txt [--json]

With several files, --json prints one object per line, each with its "file".

check-qa reads one raw LLM answer with the parser and rules qa_pairs uses (the qa_pairs settings
of $HAIC_HOME/settings.yaml included) and prints the QA in the order the answer gives them
(qa_pairs shuffles them after this, the correct text moving with its option). Exit 0 when the
answer was read, zero QA with a recorded reason (`No subject interaction.`, `[]`) included; 1
when it is rejected. check-caption runs the standardized-format check of caption_judgement and
bench_captions; exit 0 when the caption is accepted.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from haic_cli.common import UserError, stage_config
from haic_core.haic_train.caption_format import DEFAULT_MAX_WORDS, DEFAULT_MIN_WORDS, check_caption
from haic_core.haicbench.qa import CATEGORIES, QARules
from haic_core.haicbench.qa_parsing import read_qa_answer

CHECK_CLIP_ID = "check"  # the clip id of a QA read on its own (it seeds nothing here: no shuffle)


def qa_check_report(text: str, category: str, *, subject_count: int | None = None,
                    rules: QARules = QARules()) -> dict[str, Any]:
    """{"qas": [{"question", "options", "answer_index", "answer_text", "flags"}], "verdict",
    "reason", "rejections"} of one raw answer; `answer_index` is 0-based."""
    reading = read_qa_answer(text, clip_id=CHECK_CLIP_ID, category=category, model="check", prompt_version="check",
                             subject_count=subject_count, rules=rules)
    qas = [{"question": p.qa.question, "options": list(p.qa.options), "answer_index": p.qa.answer_index,
            "answer_text": p.qa.answer_text, "flags": list(p.flags)} for p in reading.accepted]
    rejections = [{"question": d.detail.get("question", ""), "reason": d.reason} for d in reading.rejections]
    if reading.accepted:
        reason = f"parsed {len(qas)} QA" + (f", rejected {len(rejections)}" if rejections else "")
    else:
        reason = "; ".join(r["reason"] for r in rejections)
    return {"qas": qas, "verdict": reading.verdict, "reason": reason, "rejections": rejections}


def caption_check_report(text: str, *, min_words: int = DEFAULT_MIN_WORDS,
                         max_words: int = DEFAULT_MAX_WORDS) -> dict[str, Any]:
    """{"verdict", "reasons", "declared_subjects", "paragraphs"} of one caption."""
    decision = check_caption(text, item_id="check", min_words=min_words, max_words=max_words)
    return {"verdict": decision.verdict, "reasons": list(decision.detail["problems"]),
            "declared_subjects": decision.detail["declared_subjects"],
            "paragraphs": decision.detail["subject_paragraphs"]}


def _print_json(reports: list[dict[str, Any]], files: list[str]) -> None:
    if len(files) == 1:
        print(json.dumps(reports[0], indent=2, ensure_ascii=False))
        return
    for file, report in zip(files, reports):
        print(json.dumps({"file": file, **report}, ensure_ascii=False))


def _readable(files: list[str]) -> None:
    missing = next((f for f in files if not Path(f).is_file()), None)
    if missing is not None:
        raise UserError(f"no such file: {missing}")


def cmd_check_qa(args: argparse.Namespace) -> int:
    _readable(args.file)
    rules = stage_config("qa_pairs").rules()
    reports = [qa_check_report(Path(file).read_text(encoding="utf-8"), args.category, subject_count=args.subjects,
                               rules=rules) for file in args.file]
    if args.json:
        _print_json(reports, args.file)
    for file, report in zip(args.file, reports) if not args.json else ():
        print(f"{file}: {report['verdict'].upper()}: {report['reason']}")
        for number, qa in enumerate(report["qas"], start=1):
            print(f"{number}. {qa['question']}")
            for position, option in enumerate(qa["options"]):
                mark = "*" if position == qa["answer_index"] else " "
                print(f"   {mark} {chr(ord('A') + position)}. {option}")
            if qa["flags"]:
                print(f"   flags: {', '.join(qa['flags'])}")
        for rejection in report["rejections"] if report["qas"] else []:
            print(f"   rejected: {rejection['question']!r}: {rejection['reason']}")
    return 1 if any(r["verdict"] == "rejected" for r in reports) else 0


def cmd_check_caption(args: argparse.Namespace) -> int:
    _readable(args.file)
    config = stage_config("caption_judgement")
    reports = [caption_check_report(Path(file).read_text(encoding="utf-8"), min_words=config.min_words,
                                    max_words=config.max_words) for file in args.file]
    if args.json:
        _print_json(reports, args.file)
    for file, report in zip(args.file, reports) if not args.json else ():
        print(f"{file}: {report['verdict'].upper()}: declares {report['declared_subjects']} subjects, "
              f"{report['paragraphs']} paragraphs")
        for reason in report["reasons"]:
            print(f"   {reason}")
    return 0 if all(r["verdict"] == "kept" for r in reports) else 1


def register(sub) -> None:
    """Register check-qa and check-caption on `haic`'s subcommands."""
    p = sub.add_parser("check-qa", help="read one raw QA answer as qa_pairs would")
    p.add_argument("--category", required=True, choices=CATEGORIES)
    p.add_argument("--subjects", type=int, default=None, help="the caption's subject count (single-subject rule)")
    p.add_argument("--json", action="store_true")
    p.add_argument("file", nargs="+", help="a raw answer, as the LLM wrote it")
    p.set_defaults(func=cmd_check_qa)
    p = sub.add_parser("check-caption", help="check one caption against the standardized format")
    p.add_argument("--json", action="store_true")
    p.add_argument("file", nargs="+", help="a caption as plain text")
    p.set_defaults(func=cmd_check_caption)

