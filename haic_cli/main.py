"""haic: curate raw web video into HAICTrain and HAICBench, and answer lineage questions.

    haic demo                 register the bundled sample source and run the main job on it
    haic ui                   the Dagster UI on 127.0.0.1 (dagster dev with DAGSTER_HOME set)
    haic add-shard FILE --source NAME   put a metadata file into the landing zone
    haic run PARTITION...     run the main job for partitions [--executor dask --scheduler ADDR]
    haic recurate [--dry-run] re-materialize only what is stale (changed settings, prompt, model, data)
    haic retry PARTITION      re-process only the items whose last verdict is error
    haic partitions list | rm KEY [--dry-run]   the partitions; remove a mistaken one with its data
    haic funnel [--source S]  kept / dropped / error per stage and source
    haic why ITEM_ID          an item's trail through the stages, with reasons, values, thresholds
    haic whatif --set S.K=V   what new thresholds would keep and drop, from the ledger (no decoding)
    haic diff [PARTITION]     the items whose verdict, reason or value changed between two runs
    haic home                 where everything lives
    haic plan --videos N      core-hours, GPU-hours, tokens and dollars for a whole source
    haic people FILE          the pose model's people, count and coverage in an image or a clip
    haic check-qa / check-caption FILE   read one raw QA answer or caption as the stages would
    haic annotation-task BATCH --partition P   export kept clips for an annotation batch
    haic evaluate --model M   score a model on HAICBench

`haic COMMAND --help` describes each. A mistake (a missing file, an unknown partition, a bad
setting) is one line on stderr and a non-zero exit; HAIC_DEBUG=1 shows the traceback too.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys

from haic_cli import __version__

# Each command group's module (haic_cli/<name>.py) and the commands it adds, in the order `haic --help`
# lists them. A command imports only its own group: `haic why` does not pay for importing Dagster.
COMMAND_GROUPS = {
    "sources": ("add-shard", "demo"), "instance": ("ui", "home"), "run": ("run",), "recurate": ("recurate",),
    "retry": ("retry",), "partitions": ("partitions",), "lineage": ("funnel", "why"), "whatif": ("whatif",),
    "diff": ("diff",), "plan": ("plan",), "people": ("people",), "checks": ("check-qa", "check-caption"),
    "annotate": ("annotation-task", "annotate"), "evaluate": ("evaluate",),
}


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser with the group of the command `argv` names, or with every group (help, a typo)."""
    argv = sys.argv[1:] if argv is None else argv
    command = next((a for a in argv if not a.startswith("-")), None)
    groups = [g for g, commands in COMMAND_GROUPS.items() if command in commands] or list(COMMAND_GROUPS)
    parser = argparse.ArgumentParser(prog="haic", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"haic {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in groups:
        importlib.import_module(f"haic_cli.{group}").register(sub)
    return parser


def stop_signals_at_their_defaults() -> None:
    """A background job of a non-interactive shell (`haic run … &` in a script) starts with SIGINT
    ignored, and Dagster gives SIGTERM SIGINT's handler: SIGTERM would be ignored too, by haic and by
    the `tail -F` children Dagster starts for its logs, which then outlive the run and keep its stdout
    open (a pipe from it never ends). haic stops on SIGINT and SIGTERM wherever it was started."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if signal.getsignal(signal.SIGTERM) is signal.SIG_IGN:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def main(argv: list[str] | None = None) -> int:
    stop_signals_at_their_defaults()
    args = build_parser(argv).parse_args(argv)
    try:
        return args.func(args)
    except Exception as exc:  # noqa: BLE001 - the one place that turns errors into one line
        message = user_error_line(exc)
        if message is None or os.environ.get("HAIC_DEBUG"):
            raise
        print(f"haic {args.command}: {message}", file=sys.stderr)
        return getattr(exc, "exit_code", 2 if isinstance(exc, ValueError) else 1)


def user_error_line(exc: BaseException) -> str | None:
    """One line for a user's mistake or the machine's state (None: a bug, shown with its traceback).

    Our validators raise ValueError with a message meant for the operator (a partition key, a
    settings file, a number that is no number); files that are missing or unreadable and a full
    disk are the machine's state, said with the path."""
    from haic_cli.common import UserError

    if isinstance(exc, UserError):
        return str(exc)
    full = disk_full_line(exc)
    if full is not None:
        return full
    if isinstance(exc, (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)):
        return f"{exc.strerror}: {exc.filename}" if exc.filename else str(exc)
    if isinstance(exc, ValueError):
        return " ".join(str(exc).split())
    return None


def disk_full_line(exc: BaseException) -> str | None:
    """"disk full: ..." with the file that found no room and its file system, or None."""
    from haic_resources.storage.disk_full import disk_full_message
    from haic_resources.storage.home import haic_home

    return disk_full_message(exc, haic_home().dagster)


if __name__ == "__main__":
    sys.exit(main())
