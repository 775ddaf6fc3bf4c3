"""`haic annotation-task`: start an annotation batch by exporting the clips it checks and captions.

    haic annotation-task omega_batch_1 --partition omega__part-0001.parquet --partition omega__part-0002.parquet

The batch becomes an `annotation_batches` partition and `annotation_tasks` exports the kept clips
(action_filtered) of the named source partitions to exports/annotation_tasks/<batch>/ (the clips,
manifest.jsonl, a README for writers and checkers). The writers' captions.jsonl then goes to
annotations/<batch>/, where the annotation sensor imports it against this task.
"""

from __future__ import annotations

import argparse

from haic_cli.common import UserError
from haic_core.partition_keys import checked_key


def register(sub) -> None:
    p = sub.add_parser("annotation-task", help="export the kept clips of source partitions for an annotation batch",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("batch", help="the annotation batch (its folder name under annotations/)")
    p.add_argument("--partition", action="append", required=True, dest="partitions",
                   help="a source shard whose kept clips the batch annotates (repeatable)")
    p.add_argument("--no-copy", action="store_true", help="list object-store URIs only, do not copy the clips")
    p.set_defaults(func=cmd_annotation_task)
    register_tool_commands(sub)


def cmd_annotation_task(args: argparse.Namespace) -> int:
    from haic_assets.platform.jobs import ANNOTATION_TASK_JOB
    from haic_assets.platform.partitions import annotation_batches
    from haic_cli.common import execute_job, instance_and_definitions

    checked_key(args.batch, "annotation batch")  # it names folders and files: one safe name, or one line
    with instance_and_definitions() as (instance, defs):
        # Checked before the batch is registered: a task that cannot be exported leaves no partition
        # behind for haicbench_split (or a run from the UI) to fail on.
        _check_curated(instance, defs.resources["storage"].tables(), args.partitions)
        added = not instance.has_dynamic_partition(annotation_batches.name, args.batch)
        if added:
            instance.add_dynamic_partitions(annotation_batches.name, [args.batch])
        run, why = execute_job(defs, instance, ANNOTATION_TASK_JOB, args.batch, {"annotation_tasks": {"config": {
            "source_partitions": args.partitions, "copy_clips": not args.no_copy}}})
        if not run.success:
            if added:
                instance.delete_dynamic_partition(annotation_batches.name, args.batch)
            raise UserError(f"{why or f'run {run.run_id} failed'}"
                            + (f"; batch {args.batch!r} removed again" if added else ""), exit_code=1)
        table = run.output_for_node("annotation_tasks", "annotation_tasks")
        folder = defs.resources["storage"].exports().uri + f"/annotation_tasks/{args.batch}"
    print(f"annotation task {args.batch}: {len(table)} clips from {', '.join(args.partitions)} -> {folder}")
    print(f"Next: captions.jsonl (clip_id, caption, writer, checkers) into annotations/{args.batch}/")
    return 0


def _check_curated(instance, tables, partitions: list[str]) -> None:
    """UserError unless every partition has kept clips to export (an action_filtered table), saying
    whether it is unknown (with the closest keys) or known but not curated yet."""
    from haic_assets.platform.partitions import source_shards
    from haic_resources.storage.landing import closest_keys

    curated = set(tables.partitions("action_filtered"))
    for partition in partitions:
        if partition in curated:
            continue
        known = instance.get_dynamic_partitions(source_shards.name)
        if partition in known:
            raise UserError(f"action_filtered has no partition {partition!r}: run the main job for it first "
                            f"(haic run {partition}). Nothing was registered.", exit_code=1)
        guesses = closest_keys(partition, sorted(set(known) | curated))
        raise UserError(f"no partition {partition!r}" + (f"; did you mean: {', '.join(guesses)}?" if guesses else
                                                         "; `haic funnel` lists the sources with rows.")
                        + " Nothing was registered.", exit_code=1)


# ---- `haic annotate`: the batch in the annotation tool (Label Studio) --------------------------------

TOOL_DOC = """`haic annotate`: a HAICBench batch's human steps in the annotation tool (Label Studio).

    haic annotate status omega_batch_1     per step: tasks done/total, annotations per annotator, agreement

The tool is HAIC_LABEL_STUDIO_URL with a personal access token in HAIC_LABEL_STUDIO_TOKEN (the
`annotation` extra). `haic annotation-task` pushes the batch's clips; the annotation sensor moves the work
between steps and imports finished steps.
"""


def register_tool_commands(sub) -> None:
    p = sub.add_parser("annotate", help="a batch's progress in the annotation tool (Label Studio)",
                       description=TOOL_DOC, formatter_class=argparse.RawDescriptionHelpFormatter)
    steps = p.add_subparsers(dest="annotate_command", required=True, metavar="SUBCOMMAND")
    status = steps.add_parser("status", help="per step: tasks done/total, per annotator, agreement",
                              description=TOOL_DOC, formatter_class=argparse.RawDescriptionHelpFormatter)
    status.add_argument("batch", help="the annotation batch")
    status.set_defaults(func=cmd_annotate_status)


def cmd_annotate_status(args: argparse.Namespace) -> int:
    from haic_platform.annotation_tool_sync import sign_offs_required
    from haic_assets.platform.resources import annotation_tool_resource
    from haic_core.haicbench.annotation_tool import STEPS, step_progress
    from haic_resources.annotation.label_studio import AnnotationToolError

    tool = annotation_tool_resource()
    if not tool.configured:
        raise UserError("no annotation tool configured: set HAIC_LABEL_STUDIO_URL and HAIC_LABEL_STUDIO_TOKEN")
    checkers, verifiers = sign_offs_required()
    required = {"caption_writing": 1, "caption_checking": checkers, "qa_verification": verifiers}
    try:
        client = tool.process_config_and_initialize().client()  # resolves the token's EnvVar
        projects = {step: client.find_project(args.batch, step) for step in STEPS}
        if projects["caption_writing"] is None:
            raise UserError(f"batch {args.batch!r} has no project in Label Studio at {client.url}: "
                            f"`haic annotation-task {args.batch} --partition P` pushes its clips", exit_code=1)
        progress = [step_progress(step, client.tasks(project) if project else [], required[step])
                    for step, project in projects.items()]
    except AnnotationToolError as exc:
        raise UserError(str(exc), exit_code=1) from None
    print(f"annotation batch {args.batch} in Label Studio ({client.url})")
    print(f"{'step':<18} {'done/total':>10}  {'agreement':<24} annotations per annotator")
    for step in progress:
        people = ", ".join(f"{who}: {n}" for who, n in step.per_annotator.items()) or "-"
        print(f"{step.step:<18} {f'{step.done}/{step.total}':>10}  {step.agreement():<24} {people}")
    return 0
