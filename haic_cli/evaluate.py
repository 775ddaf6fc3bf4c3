"""`haic evaluate`: register a model as an eval_models partition, run it on HAICBench, print the
leaderboard in the paper's layout (our rows, then the paper's rows marked as reference).

    haic evaluate --model Qwen2-VL-7B-Instruct --base-url http://gpu-box:8000/v1 --frames 64
    haic evaluate --model gemini-2.5-pro --provider gemini --protocol caption
    haic evaluate --model m --base-url URL --qa-set verified:sample_batch --video-root ../shared/media/videos
    haic evaluate --model gpt-4o --batch     # batch jobs at the batch price; run it again to collect

Progress lines show how far the calls are. A failed call counts as a wrong answer: the summary
and the leaderboard give the share of questions in error, the failures are grouped by kind in one
line, and the command exits 1 when that share is above --max-error-share (default: the
eval_answers setting max_error_share, 1 %); running it again asks only the calls that failed (the
others are cached). A reply the endpoint sent malformed is asked once more, never twice.

Keys come from the environment (OPENAI_API_KEY, GEMINI_API_KEY); the caption protocol's judge is
the platform's LLM backend (HAIC_LLM_PROVIDER / HAIC_LLM_MODEL / OPENAI_BASE_URL / GEMINI_API_KEY).
"""

from __future__ import annotations

import argparse
import sys

from pydantic import ValidationError

from haic_cli.common import UserError
from haic_core.evaluation.models import DEFAULT_FRAMES, PROTOCOLS, PROVIDERS, SPLIT_QA_SET, VIDEO_INPUTS, EvalModel
from haic_core.evaluation.protocols import PENDING
from haic_core.evaluation.results import error_share, error_summary, leaderboard, leaderboard_text

RESULT_COUNTS = ["category", "n", "correct", "refused", "unparsed", "errors", "accuracy"]


def register(sub) -> None:
    p = sub.add_parser("evaluate", help="run a model on HAICBench and print the leaderboard",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="the model name the provider serves")
    p.add_argument("--protocol", choices=PROTOCOLS, default="standard")
    p.add_argument("--provider", choices=PROVIDERS, default="openai", help="openai: OpenAI or any compatible server")
    p.add_argument("--base-url", help="an OpenAI-compatible endpoint, e.g. http://host:8000/v1")
    p.add_argument("--frames", type=int, default=DEFAULT_FRAMES,
                   help="frames sampled uniformly per clip (OpenAI-compatible servers; Gemini takes the video)")
    p.add_argument("--video-input", choices=VIDEO_INPUTS, default="frames",
                   help="OpenAI-compatible servers: frames (N sampled frames as images) or video_url (the clip "
                        "itself as one video_url part, as vLLM serving a video model takes it)")
    p.add_argument("--input-price", type=float, metavar="USD", help="the model's price per million input tokens, "
                   "for its cost in the run's metadata (default: as registered, else not priced)")
    p.add_argument("--output-price", type=float, metavar="USD", help="its price per million output tokens")
    p.add_argument("--qa-set", default=SPLIT_QA_SET, help="split (the test split) or verified:<annotation batch>")
    p.add_argument("--video-root", default="", help="folder with <clip_id>.mp4 for clips the platform did not cut")
    p.add_argument("--max-questions", type=int, default=0, help="only the first N questions (a smoke run)")
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--max-error-share", type=float, metavar="SHARE",
                   help="exit 1 when more than this share (0-1) of the questions is in error (default: the "
                        "eval_answers setting max_error_share)")
    p.add_argument("--batch", action="store_true",
                   help="send the calls as batch jobs (half price, answered within 24 h) and return; the "
                        "eval_batch_sensor ingests them, or run the same command again to collect what has ended")
    p.add_argument("--register-only", action="store_true",
                   help="only add the partition and its registry entry (then materialize it from the UI)")
    p.add_argument("--no-reference", action="store_true", help="leave out the paper's rows")
    p.set_defaults(func=cmd_evaluate)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from haic_assets.evaluation.eval_answers import missing_questions
    from haic_assets.evaluation.jobs import EVAL_LEADERBOARD_JOB, EVALUATE_MODEL_JOB
    from haic_platform.evaluation.registry import eval_models, lookup, read_registry, register, unregister
    from haic_cli.common import execute_job, instance_and_definitions, stage_config
    from haic_resources.storage.home import haic_home

    spec = EvalModel(model=args.model, protocol=args.protocol, provider=args.provider, base_url=args.base_url,
                     frames=args.frames, qa_set=args.qa_set, video_input=args.video_input,
                     input_price_per_million=args.input_price, output_price_per_million=args.output_price)
    settings = stage_config("eval_answers")
    max_share = settings.max_error_share if args.max_error_share is None else args.max_error_share
    if not 0.0 <= max_share <= 1.0:
        raise UserError(f"--max-error-share {max_share:g}: give a share between 0 and 1 (0.05 = 5 %)")
    try:
        config = type(settings)(video_root=args.video_root, max_questions=args.max_questions,
                                concurrency=args.concurrency, **({"llm_mode": "batch"} if args.batch else {}))
    except ValidationError as exc:
        raise UserError("; ".join(f"--{'-'.join(map(str, e['loc'])).replace('_', '-')}: {e['msg']}"
                                  for e in exc.errors())) from None
    home = haic_home().root
    with instance_and_definitions() as (instance, defs):
        # Checked before anything is registered: a command that cannot run leaves no partition behind.
        problem = missing_questions(defs.resources["storage"].tables(), spec)
        if problem:
            raise UserError(f"{problem}. Nothing was registered.", exit_code=1)
        new_key = spec.key not in read_registry(home) and not instance.has_dynamic_partition(eval_models.name,
                                                                                              spec.key)
        key = register(home, spec, instance)
        spec = lookup(home, key)  # with the prices registered before, where not given now
        seen = "the video (video_url)" if spec.video_input == "video_url" else f"{spec.frames} frames"
        print(f"eval model {key}: {spec.provider}/{spec.model}, protocol {spec.protocol}, {seen}, "
              f"questions {spec.qa_set}")
        if args.register_only:
            print(f"registered; materialize eval_answers for partition {key!r} from the UI")
            return 0
        run, why = execute_job(defs, instance, EVALUATE_MODEL_JOB, key, {"eval_answers": {"config": {
            name: getattr(config, name) for name in ("video_root", "max_questions", "concurrency", "llm_mode")}}})
        if not run.success:
            if new_key:  # what this command added goes again: a later run of the UI must not meet it
                unregister(home, key, instance)
            raise UserError(f"run {run.run_id} failed: {why or 'see the run in the UI'}"
                            + (f"; partition {key!r} removed again" if new_key else ""), exit_code=1)
        results = run.output_for_node("eval_answers", "eval_results")
        answers = run.output_for_node("eval_answers", "eval_answers")
        pending = answers[answers["verdict"] == PENDING]
        if len(pending):
            jobs = sorted({note.rsplit(" ", 1)[-1] for note in pending["note"]})
            print(f"{len(pending)} of {len(answers)} questions wait in batch job(s) {', '.join(jobs)}; the "
                  "eval_batch_sensor ingests them when they end (or run this command again)")
            return 0
        execute_job(defs, instance, EVAL_LEADERBOARD_JOB)
    print()
    print(results[RESULT_COUNTS].to_string(index=False, float_format=lambda v: f"{v:.1f}"))
    share, failures = error_share(answers), error_summary(answers)
    print(f"errors: {failures}" if failures else "errors: none")
    print()
    board = leaderboard(results, with_reference=not args.no_reference, protocols=(spec.protocol,))
    print(f"HAICBench, {spec.protocol} evaluation (accuracy %; paper rows are reference, not ours; Errors % counted "
          "wrong)")
    print(leaderboard_text(board))
    if share > max_share:
        print(f"haic evaluate: {100 * share:.1f} % of the questions are in error, above --max-error-share "
              f"{100 * max_share:g} %: these scores are the endpoint's, not the model's; run the same command "
              "again to ask only the failed calls", file=sys.stderr)
        return 1
    return 0
