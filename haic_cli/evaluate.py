"""`haic evaluate`: register a model as an eval_models partition, run it on HAICBench, print the
leaderboard in the paper's layout (our rows, then the paper's rows marked as reference).

    haic evaluate --model Qwen2-VL-7B-Instruct --base-url http://gpu-box:8000/v1 --frames 64
    haic evaluate --model gemini-2.5-pro --provider gemini --protocol caption
    haic evaluate --model m --base-url URL --qa-set verified:sample_batch --video-root ../shared/media/videos
    haic evaluate --model gpt-4o --batch     # batch jobs at the batch price; run it again to collect

Keys come from the environment (OPENAI_API_KEY, GEMINI_API_KEY); the caption protocol's judge is
the platform's LLM backend (HAIC_LLM_PROVIDER / HAIC_LLM_MODEL / OPENAI_BASE_URL / GEMINI_API_KEY).
"""

from __future__ import annotations

import argparse
import sys

from haic_core.evaluation.models import DEFAULT_FRAMES, PROTOCOLS, PROVIDERS, SPLIT_QA_SET, VIDEO_INPUTS, EvalModel
from haic_core.evaluation.protocols import PENDING
from haic_core.evaluation.results import leaderboard, leaderboard_text

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
    p.add_argument("--batch", action="store_true",
                   help="send the calls as batch jobs (half price, answered within 24 h) and return; the "
                        "eval_batch_sensor ingests them, or run the same command again to collect what has ended")
    p.add_argument("--register-only", action="store_true",
                   help="only add the partition and its registry entry (then materialize it from the UI)")
    p.add_argument("--no-reference", action="store_true", help="leave out the paper's rows")
    p.set_defaults(func=cmd_evaluate)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from haic_assets.evaluation.jobs import EVAL_LEADERBOARD_JOB, EVALUATE_MODEL_JOB
    from haic_assets.evaluation.registry import lookup, register
    from haic_cli.common import QUIET_CONSOLE, instance_and_definitions
    from haic_resources.storage.home import haic_home

    try:
        spec = EvalModel(model=args.model, protocol=args.protocol, provider=args.provider, base_url=args.base_url,
                         frames=args.frames, qa_set=args.qa_set, video_input=args.video_input,
                         input_price_per_million=args.input_price, output_price_per_million=args.output_price)
    except ValueError as exc:
        print(f"haic evaluate: {exc}", file=sys.stderr)
        return 2
    with instance_and_definitions() as (instance, defs):
        try:
            key = register(haic_home().root, spec, instance)
            spec = lookup(haic_home().root, key)  # with the prices registered before, where not given now
        except ValueError as exc:
            print(f"haic evaluate: {exc}", file=sys.stderr)
            return 2
        seen = "the video (video_url)" if spec.video_input == "video_url" else f"{spec.frames} frames"
        print(f"eval model {key}: {spec.provider}/{spec.model}, protocol {spec.protocol}, {seen}, "
              f"questions {spec.qa_set}")
        if args.register_only:
            print(f"registered; materialize eval_answers for partition {key!r} from the UI")
            return 0
        config = {"video_root": args.video_root, "max_questions": args.max_questions,
                  "concurrency": args.concurrency, **({"llm_mode": "batch"} if args.batch else {})}
        run = defs.resolve_job_def(EVALUATE_MODEL_JOB).execute_in_process(
            partition_key=key, instance=instance, raise_on_error=False,
            run_config={**QUIET_CONSOLE, "ops": {"eval_answers": {"config": config}}})
        if not run.success:
            failures = [str(e.step_failure_data.error.message if e.step_failure_data.error else "") +
                        str(e.step_failure_data.user_failure_data.description
                            if e.step_failure_data.user_failure_data else "")
                        for e in run.all_events if e.is_step_failure]
            print(f"haic evaluate: run {run.run_id} failed: {' '.join(failures).strip()}", file=sys.stderr)
            return 1
        results = run.output_for_node("eval_answers", "eval_results")
        answers = run.output_for_node("eval_answers", "eval_answers")
        pending = answers[answers["verdict"] == PENDING]
        if len(pending):
            jobs = sorted({note.rsplit(" ", 1)[-1] for note in pending["note"]})
            print(f"{len(pending)} of {len(answers)} questions wait in batch job(s) {', '.join(jobs)}; the "
                  "eval_batch_sensor ingests them when they end (or run this command again)")
            return 0
        defs.resolve_job_def(EVAL_LEADERBOARD_JOB).execute_in_process(instance=instance, raise_on_error=False,
                                                                      run_config=QUIET_CONSOLE)
    print()
    print(results[RESULT_COUNTS].to_string(index=False, float_format=lambda v: f"{v:.1f}"))
    print()
    board = leaderboard(results, with_reference=not args.no_reference, protocols=(spec.protocol,))
    print(f"HAICBench, {spec.protocol} evaluation (accuracy %; paper rows are reference, not ours)")
    print(leaderboard_text(board))
    return 0
