"""The landing zone: where new metadata shards arrive, one folder (or S3 prefix) per source.

    landing/<source>/<shard file>      e.g. landing/webvid/results_2M_val.csv
    landing/<source>/source.yaml       optional: kind (webvid | omega | generic), columns, media_root

A shard's partition key is '<source>__<file name>'. Sources whose folder has no source.yaml
take their kind from the name: webvid* -> webvid, omega* -> omega.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from haic_core.accumulation.metadata_sources import ColumnMapping, SourceSpec
from haic_resources.storage.object_store import ObjectStore

SHARD_SUFFIXES = (".csv", ".tsv", ".jsonl", ".ndjson", ".parquet", ".csv.gz", ".jsonl.gz")
_SOURCE_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9_-]*[a-z0-9])?$")
_SHARD_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
SEPARATOR = "__"


@dataclass(frozen=True)
class Shard:
    source: str
    file_name: str

    @property
    def partition_key(self) -> str:
        return f"{self.source}{SEPARATOR}{self.file_name}"

    @property
    def key(self) -> str:
        return f"{self.source}/{self.file_name}"


def shard_of_partition(partition_key: str) -> Shard:
    source, sep, file_name = partition_key.partition(SEPARATOR)
    if not sep or not file_name:
        raise ValueError(f"partition key {partition_key!r} is not '<source>{SEPARATOR}<shard file>'")
    return Shard(source, file_name)


def shard_problem(key: str) -> str | None:
    """Why a landing key cannot be a shard (None when it can)."""
    parts = key.split("/")
    if len(parts) != 2:
        return "shards live directly in landing/<source>/"
    source, name = parts
    if name == "source.yaml" or name.startswith("."):
        return "not a shard file"
    if not name.lower().endswith(SHARD_SUFFIXES):
        return f"not a metadata file ({', '.join(SHARD_SUFFIXES)})"
    if not _SOURCE_NAME.match(source) or SEPARATOR in source:
        return f"source folder {source!r}: use lower-case letters, digits, '-' and single '_'"
    if not _SHARD_NAME.match(name):
        return f"shard file {name!r}: use letters, digits, '.', '_' and '-'"
    return None


def list_shards(landing: ObjectStore) -> tuple[list[Shard], dict[str, str]]:
    """All shard files in the landing zone, and the keys that were skipped with the reason."""
    shards, skipped = [], {}
    for key in landing.list(""):
        problem = shard_problem(key)
        if problem is None:
            source, name = key.split("/")
            shards.append(Shard(source, name))
        elif not key.endswith("source.yaml"):
            skipped[key] = problem
    return shards, skipped


def source_spec(landing: ObjectStore, source: str, allowed_roots: tuple[str, ...]) -> SourceSpec:
    raw = landing.get_bytes(f"{source}/source.yaml")
    config = yaml.safe_load(raw) if raw else {}
    config = config or {}
    kind = config.get("kind") or ("webvid" if source.startswith("webvid") else
                                  "omega" if source.startswith("omega") else "generic")
    columns = config.get("columns")
    mapping = ColumnMapping(**columns) if columns else None
    media_root = config.get("media_root")
    roots = tuple(allowed_roots) + ((str(Path(media_root).resolve()),) if media_root else ())
    return SourceSpec(name=source, kind=kind, mapping=mapping, media_root=media_root, allowed_roots=roots)


def fetch_shard(landing: ObjectStore, shard: Shard, cache_dir: Path) -> Path:
    """A local path of the shard file (itself when local; an S3 shard is downloaded first)."""
    local = landing.local_path(shard.key)
    if local is not None:
        if not local.is_file():
            raise FileNotFoundError(f"shard {shard.key} is no longer in the landing zone")
        return local
    target = cache_dir / "landing" / shard.key
    if not landing.get_file(shard.key, target):
        raise FileNotFoundError(f"shard {shard.key} is no longer in the landing zone")
    return target
