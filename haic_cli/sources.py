"""`haic add-shard` and `haic demo`: metadata shards into the landing zone.

    haic add-shard FILE --source NAME [--source-yaml FILE]   put a metadata file into landing/<source>/
    haic demo                                                 the bundled sample source, curated end to end
"""

from __future__ import annotations

import argparse
from pathlib import Path

from haic_cli.common import UserError
from haic_resources.storage.home import REPO_ROOT, haic_home
from haic_resources.storage.landing import MARKER_SUFFIX, Shard, shard_of_partition, shard_problem

SAMPLE_SOURCE = "webvid_sample"
SAMPLE_DIR = REPO_ROOT / "samples" / SAMPLE_SOURCE


def register(sub) -> None:
    p = sub.add_parser("add-shard", help="copy a metadata file into the landing zone",
                       description="Copy a metadata file into landing/<source>/; the landing sensor then adds "
                                   "its partition and runs the main job.")
    p.add_argument("file", help="a WebVid CSV, an Omega Parquet, or a file that source.yaml maps")
    p.add_argument("--source", required=True, help="source name: lower-case letters, digits, '-' and single '_'")
    p.add_argument("--source-yaml", help="a source.yaml to install beside it (columns, kind, media_root)")
    p.set_defaults(func=cmd_add_shard)
    p = sub.add_parser("demo", help="run the main job on the bundled sample",
                       description="Register the bundled sample source (samples/webvid_sample, two Apache-2.0 "
                                   "clips), run the main job curate_source on it and print the funnel.")
    p.set_defaults(func=cmd_demo)


def add_shard(file: Path, source: str, source_yaml: str | None = None) -> Shard:
    """Put a metadata file into landing/<source>/ (a local folder, or HAIC_LANDING_URI in S3)."""
    from haic_assets.platform.resources import build_resources

    shard = shard_of_partition(Shard(source, file.name).partition_key)  # refuses names no partition may have
    landing = build_resources()["storage"].landing()
    if source_yaml is not None:
        landing.put_bytes(f"{source}/source.yaml", source_yaml.encode())
    landing.put_file(shard.key, file)
    landing.put_bytes(shard.key + MARKER_SUFFIX, b"")  # whole: the landing sensor may read it at once
    return shard


def cmd_add_shard(args: argparse.Namespace) -> int:
    file = Path(args.file)
    if not file.is_file():
        raise UserError(f"no such file: {file}")
    problem = shard_problem(f"{args.source}/{file.name}")
    if problem:
        raise UserError(problem)
    source_yaml = None
    if args.source_yaml:
        source_yaml_file = Path(args.source_yaml)
        if not source_yaml_file.is_file():
            raise UserError(f"no such file: {source_yaml_file}")
        source_yaml = source_yaml_file.read_text()
    shard = add_shard(file, args.source, source_yaml=source_yaml)
    print(f"landing/{shard.key} written" + (f" with landing/{args.source}/source.yaml" if source_yaml else "")
          + f"; the landing sensor will add partition {shard.partition_key!r} and run curate_source for it "
          f"(or run: haic run {shard.partition_key})")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from haic_assets.platform.resources import llm_resource
    from haic_cli.lineage import cmd_funnel
    from haic_cli.run import run_partition
    from haic_resources.llm.resource import NOT_CONFIGURED

    layout = haic_home()
    print(f"HAIC_HOME={layout.root}")
    if not llm_resource().configured:
        print(f"Note: {NOT_CONFIGURED}")
    shard = add_shard(SAMPLE_DIR / "results_sample.csv", SAMPLE_SOURCE,
                      source_yaml=f"kind: webvid\nmedia_root: {REPO_ROOT / 'samples' / 'media'}\n")
    print(f"sample shard: landing/{shard.key} -> partition {shard.partition_key}")
    ok = run_partition(shard.partition_key)
    print()
    cmd_funnel(argparse.Namespace(source=None))
    print("\nNext: `haic why webvid_sample:1003` (why an item was dropped), `haic ui` (the Dagster UI).")
    return 0 if ok else 1
